package grpccircuit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purgatory-go/purgatory/grpccircuit"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The test service, written by hand (no protoc): test.Echo with a unary
// Call and a server-streaming Stream. The request's value says how to
// answer: "ok", a code name such as "Unavailable" or "NotFound", or
// "hang" (until the call's context is done).
type echo struct{ hits atomic.Int64 }

func (e *echo) answer(ctx context.Context, v string) error {
	e.hits.Add(1)
	switch v {
	case "ok":
		return nil
	case "hang":
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	for c := codes.Code(1); c <= 16; c++ {
		if c.String() == v {
			return status.Error(c, "test: "+v)
		}
	}
	return fmt.Errorf("test: unknown answer %q", v)
}

type echoServer interface{}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*echoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if err := srv.(*echo).answer(ctx, in.Value); err != nil {
				return nil, err
			}
			return in, nil
		},
	}, {
		MethodName: "Other",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, srv.(*echo).answer(ctx, in.Value)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, s grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := s.RecvMsg(in); err != nil {
				return err
			}
			for range 2 {
				if err := s.SendMsg(in); err != nil {
					return err
				}
			}
			return srv.(*echo).answer(s.Context(), in.Value)
		},
	}},
}

var streamDesc = &grpc.StreamDesc{StreamName: "Stream", ServerStreams: true}

// serve starts the test service on 127.0.0.1 and returns its address.
func serve(t *testing.T) (*echo, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	e := &echo{}
	s.RegisterService(&echoDesc, e)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return e, l.Addr().String()
}

func dial(t *testing.T, target string, f *purgatory.Factory, opts ...grpccircuit.Option) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(grpccircuit.UnaryClientInterceptor(f, opts...)),
		grpc.WithStreamInterceptor(grpccircuit.StreamClientInterceptor(f, opts...)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func call(ctx context.Context, cc *grpc.ClientConn, method, v string) error {
	return cc.Invoke(ctx, "/test.Echo/"+method, wrapperspb.String(v), new(wrapperspb.StringValue))
}

var twoStrikes = grpccircuit.WithConfig(purgatory.Config{Threshold: 2, TTL: time.Minute})

func TestUnaryOpensPerTarget(t *testing.T) {
	ctx := context.Background()
	failing, failingAddr := serve(t)
	healthy, healthyAddr := serve(t)
	f := purgatory.NewFactory()
	cf, ch := dial(t, failingAddr, f, twoStrikes), dial(t, healthyAddr, f, twoStrikes)

	for range 2 {
		assert.Equal(t, codes.Unavailable, status.Code(call(ctx, cf, "Call", "Unavailable")))
	}
	err := call(ctx, cf, "Call", "ok")
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err), "a rejection is Unavailable")
	assert.ErrorIs(t, err, purgatory.ErrOpen)
	var oe *purgatory.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "grpc/"+failingAddr, oe.Circuit)
	st, ok := status.FromError(err)
	require.True(t, ok)
	require.Len(t, st.Details(), 1)
	ri, ok := st.Details()[0].(*errdetails.RetryInfo)
	require.True(t, ok)
	assert.Equal(t, time.Minute, ri.RetryDelay.AsDuration())
	assert.EqualValues(t, 2, failing.hits.Load(), "a rejected call is not sent")

	require.NoError(t, call(ctx, ch, "Call", "ok"), "the other target's circuit is closed")
	assert.EqualValues(t, 1, healthy.hits.Load())
	b, ok := f.Lookup("grpc/" + healthyAddr)
	require.True(t, ok)
	assert.Equal(t, purgatory.Closed, b.State())
	assert.Equal(t, "grpc", b.Group())
}

func TestClientErrorsAreNotFailures(t *testing.T) {
	ctx := context.Background()
	srv, addr := serve(t)
	f := purgatory.NewFactory()
	cc := dial(t, addr, f, twoStrikes)
	for _, c := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.FailedPrecondition, codes.OutOfRange, codes.Unimplemented, codes.Aborted, codes.NotFound} {
		assert.Equal(t, c, status.Code(call(ctx, cc, "Call", c.String())))
	}
	b, _ := f.Lookup("grpc/" + addr)
	assert.Equal(t, purgatory.Closed, b.State())
	assert.Zero(t, b.Status().Counts.Failure)
	assert.EqualValues(t, 10, srv.hits.Load())
}

func TestEveryFailureCode(t *testing.T) {
	for _, c := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unknown} {
		t.Run(c.String(), func(t *testing.T) {
			_, addr := serve(t)
			f := purgatory.NewFactory()
			cc := dial(t, addr, f, twoStrikes)
			for range 2 {
				assert.Equal(t, c, status.Code(call(context.Background(), cc, "Call", c.String())))
			}
			b, _ := f.Lookup("grpc/" + addr)
			assert.Equal(t, purgatory.Open, b.State())
		})
	}
}

func TestDeadlineIsAFailureCancelIsNot(t *testing.T) {
	srv, addr := serve(t)
	f := purgatory.NewFactory()
	cc := dial(t, addr, f, twoStrikes)
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for srv.hits.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		assert.Equal(t, codes.Canceled, status.Code(call(ctx, cc, "Call", "hang")))
		srv.hits.Store(0)
	}
	b, _ := f.Lookup("grpc/" + addr)
	assert.Equal(t, purgatory.Closed, b.State())
	assert.EqualValues(t, 3, b.Status().Counts.Ignored)
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		assert.Equal(t, codes.DeadlineExceeded, status.Code(call(ctx, cc, "Call", "hang")))
		cancel()
	}
	assert.Equal(t, purgatory.Open, b.State())
}

func TestPerMethod(t *testing.T) {
	ctx := context.Background()
	_, addr := serve(t)
	f := purgatory.NewFactory()
	cc := dial(t, addr, f, twoStrikes, grpccircuit.PerMethod())
	for range 2 {
		_ = call(ctx, cc, "Call", "Internal")
	}
	assert.ErrorIs(t, call(ctx, cc, "Call", "ok"), purgatory.ErrOpen)
	require.NoError(t, call(ctx, cc, "Other", "ok"), "another method of the target")
	b, ok := f.Lookup("grpc/" + addr + "/test.Echo/Call")
	require.True(t, ok)
	assert.Equal(t, purgatory.Open, b.State())
	assert.Equal(t, "grpc/"+addr, b.Group())
	b, ok = f.Lookup("grpc/" + addr + "/test.Echo/Other")
	require.True(t, ok)
	assert.Equal(t, purgatory.Closed, b.State())
}

func openStream(ctx context.Context, cc *grpc.ClientConn, v string) (int, error) {
	s, err := cc.NewStream(ctx, streamDesc, "/test.Echo/Stream")
	if err != nil {
		return 0, err
	}
	if err := s.SendMsg(wrapperspb.String(v)); err != nil {
		return 0, err
	}
	if err := s.CloseSend(); err != nil {
		return 0, err
	}
	n := 0
	for {
		err := s.RecvMsg(new(wrapperspb.StringValue))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func TestStream(t *testing.T) {
	ctx := context.Background()
	srv, addr := serve(t)
	f := purgatory.NewFactory()
	cc := dial(t, addr, f, twoStrikes)
	n, err := openStream(ctx, cc, "ok")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for range 3 {
		_, err = openStream(ctx, cc, "NotFound")
		assert.Equal(t, codes.NotFound, status.Code(err))
	}
	b, _ := f.Lookup("grpc/" + addr)
	assert.Equal(t, purgatory.Closed, b.State())
	for range 2 {
		n, err = openStream(ctx, cc, "Unavailable")
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Equal(t, 2, n, "the messages before the error arrive")
	}
	assert.Equal(t, purgatory.Open, b.State())
	_, err = openStream(ctx, cc, "ok")
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.ErrorIs(t, err, purgatory.ErrOpen)
	assert.EqualValues(t, 6, srv.hits.Load())
	st := b.Status().Counts
	assert.EqualValues(t, 2, st.Failure)
}

func TestPredicates(t *testing.T) {
	for _, c := range []struct {
		err            error
		failure, again bool
	}{
		{nil, false, false},
		{status.Error(codes.Unavailable, "x"), true, false},
		{status.Error(codes.DeadlineExceeded, "x"), true, false},
		{status.Error(codes.ResourceExhausted, "x"), true, false},
		{status.Error(codes.Internal, "x"), true, false},
		{status.Error(codes.Unknown, "x"), true, false},
		{errors.New("no status"), true, false},
		{context.DeadlineExceeded, true, false},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true, false},
		{context.Canceled, false, false},
		{status.Error(codes.Canceled, "x"), false, false},
		{status.Error(codes.DataLoss, "x"), false, false},
		{status.Error(codes.NotFound, "x"), false, true},
		{status.Error(codes.InvalidArgument, "x"), false, true},
		{status.Error(codes.AlreadyExists, "x"), false, true},
		{status.Error(codes.PermissionDenied, "x"), false, true},
		{status.Error(codes.Unauthenticated, "x"), false, true},
		{status.Error(codes.FailedPrecondition, "x"), false, true},
		{status.Error(codes.Aborted, "x"), false, true},
		{status.Error(codes.OutOfRange, "x"), false, true},
		{status.Error(codes.Unimplemented, "x"), false, true},
		{fmt.Errorf("wrapped: %w", status.Error(codes.NotFound, "x")), false, true},
	} {
		assert.Equal(t, c.failure, grpccircuit.IsFailure(c.err), "IsFailure(%v)", c.err)
		assert.Equal(t, c.again, grpccircuit.IsClientError(c.err), "IsClientError(%v)", c.err)
	}
}

func TestWithFailure(t *testing.T) {
	ctx := context.Background()
	_, addr := serve(t)
	f := purgatory.NewFactory()
	cc := dial(t, addr, f, twoStrikes, grpccircuit.WithPrefix("svc"), grpccircuit.WithFailure(func(err error) bool {
		return grpccircuit.IsFailure(err) || status.Code(err) == codes.DataLoss
	}))
	for range 2 {
		_ = call(ctx, cc, "Call", "DataLoss")
	}
	b, ok := f.Lookup("svc/" + addr)
	require.True(t, ok)
	assert.Equal(t, purgatory.Open, b.State())
}

func TestBadOptionsPanic(t *testing.T) {
	assert.PanicsWithValue(t, `grpccircuit: WithPrefix("")`, func() { grpccircuit.UnaryClientInterceptor(nil, grpccircuit.WithPrefix("")) })
	assert.PanicsWithValue(t, "grpccircuit: WithFailure(nil)", func() { grpccircuit.StreamClientInterceptor(nil, grpccircuit.WithFailure(nil)) })
}
