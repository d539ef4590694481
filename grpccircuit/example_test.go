package grpccircuit_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/purgatory-go/purgatory/grpccircuit"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// The interceptors guard every call of a connection. NotFound is the
// server's answer to a bad request: not a failure. Once the server is
// gone, Unavailable errors open the target's circuit, and calls fail at
// once with an Unavailable status that is also purgatory.ErrOpen.
func ExampleUnaryClientInterceptor() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)

	factory := purgatory.NewFactory()
	conn, _ := grpc.NewClient(l.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(grpccircuit.UnaryClientInterceptor(factory,
			grpccircuit.WithConfig(purgatory.Config{Threshold: 2, TTL: time.Minute}))),
		grpc.WithStreamInterceptor(grpccircuit.StreamClientInterceptor(factory)))
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	check := func() {
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "payments"})
		fmt.Println(status.Code(err), errors.Is(err, purgatory.ErrOpen))
	}

	check()
	check()
	srv.Stop()
	check()
	check()
	check()
	// Output:
	// NotFound false
	// NotFound false
	// Unavailable false
	// Unavailable false
	// Unavailable true
}

// IsFailure and IsClientError sort gRPC errors; a generated wrapper of a
// pb.XxxClient takes them as exclude=grpccircuit.IsClientError, say.
func ExampleIsFailure() {
	for _, c := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.NotFound, codes.Canceled} {
		err := status.Error(c, "x")
		fmt.Println(c, grpccircuit.IsFailure(err), grpccircuit.IsClientError(err))
	}
	// Output:
	// Unavailable true false
	// DeadlineExceeded true false
	// NotFound false true
	// Canceled false false
}

// PerMethod gives each method its own circuit: a failing method does not
// stop the others of the same server.
func ExamplePerMethod() {
	interceptor := grpccircuit.UnaryClientInterceptor(nil, grpccircuit.PerMethod(),
		grpccircuit.WithConfig(purgatory.Config{Threshold: 10}))
	_ = grpc.WithUnaryInterceptor(interceptor)
	// Circuits are named "grpc/<target>/<service>/<method>", such as
	// "grpc/payments:443/payments.v1.Payments/Charge".
}
