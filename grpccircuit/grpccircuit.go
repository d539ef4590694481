// Package grpccircuit guards gRPC clients with purgatory circuit breakers:
// client interceptors with one circuit per target (or per method), and
// the predicates [IsFailure] and [IsClientError], which generated wrappers
// of a pb.XxxClient take in exclude= or ignore=.
//
//	conn, err := grpc.NewClient(target,
//		grpc.WithTransportCredentials(insecure.NewCredentials()),
//		grpc.WithUnaryInterceptor(grpccircuit.UnaryClientInterceptor(nil)),
//		grpc.WithStreamInterceptor(grpccircuit.StreamClientInterceptor(nil)))
//
// While a target's circuit is open, calls fail at once with a status
// error of code Unavailable (see [RejectedError]) for which
// errors.Is(err, purgatory.ErrOpen) also holds.
package grpccircuit

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultPrefix is the name of the circuit group of interceptors made
// without [WithPrefix].
const DefaultPrefix = "grpc"

// Option configures an interceptor.
type Option func(*options)

type options struct {
	cfg       purgatory.Config
	prefix    string
	perMethod bool
	isFailure func(error) bool
	groupOpts []purgatory.GroupOption
}

// WithConfig sets the configuration of every circuit (zero fields take
// the factory's defaults).
func WithConfig(cfg purgatory.Config) Option { return func(o *options) { o.cfg = cfg } }

// WithPrefix sets the start of the circuit names (default
// [DefaultPrefix]): "<prefix>/<target>", or with [PerMethod]
// "<prefix>/<target>/<service>/<method>".
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// PerMethod gives each method of a target a circuit of its own, named
// "<prefix>/<target>/<service>/<method>" (the circuits of one target are
// a [purgatory.Group] named "<prefix>/<target>"), instead of one circuit
// per target.
func PerMethod() Option { return func(o *options) { o.perMethod = true } }

// WithFailure sets which call errors count as failures (default
// [IsFailure]). An error it does not match is a success (the server
// answered), except a cancellation (code Canceled, or context.Canceled),
// which counts as neither.
func WithFailure(isFailure func(error) bool) Option {
	return func(o *options) { o.isFailure = isFailure }
}

// WithGroupOptions passes options to the circuit groups: how many
// circuits they keep ([purgatory.WithMaxKeys]) and how soon an idle one
// goes ([purgatory.WithIdleTimeout]).
func WithGroupOptions(opts ...purgatory.GroupOption) Option {
	return func(o *options) { o.groupOpts = append(o.groupOpts, opts...) }
}

// IsFailure reports whether err is a gRPC error that says the server or
// the path to it is in trouble: codes Unavailable, DeadlineExceeded,
// ResourceExhausted, Internal and Unknown (which is also the code of an
// error that carries no status). It is false for nil, for
// context.Canceled and code Canceled, and for every other code.
func IsFailure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// IsClientError reports whether err is a gRPC error a server gives for a
// bad request, which says nothing of its health: codes InvalidArgument,
// NotFound, AlreadyExists, PermissionDenied, Unauthenticated,
// FailedPrecondition, Aborted, OutOfRange and Unimplemented. A generated
// wrapper takes it as exclude=grpccircuit.IsClientError.
func IsClientError(err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied, codes.Unauthenticated,
		codes.FailedPrecondition, codes.Aborted, codes.OutOfRange, codes.Unimplemented:
		return true
	}
	return false
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}

// RejectedError is the error of a call that an open circuit rejected: a
// gRPC status error of code Unavailable (status.Code and status.FromError
// see it) that wraps the circuit's [*purgatory.OpenError], so that
// errors.Is(err, purgatory.ErrOpen) and errors.As to *purgatory.OpenError
// hold. Its status carries a google.rpc.RetryInfo detail with the
// OpenError's RetryAfter, when that is above zero.
type RejectedError struct {
	Open *purgatory.OpenError
}

// Error returns the OpenError's text.
func (e *RejectedError) Error() string { return e.Open.Error() }

// Unwrap returns the OpenError.
func (e *RejectedError) Unwrap() error { return e.Open }

// GRPCStatus returns the Unavailable status of the rejection.
func (e *RejectedError) GRPCStatus() *status.Status {
	s := status.New(codes.Unavailable, e.Open.Error())
	if e.Open.RetryAfter > 0 {
		if d, err := s.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.Open.RetryAfter)}); err == nil {
			s = d
		}
	}
	return s
}

func rejected(err error) error {
	var oe *purgatory.OpenError
	if errors.As(err, &oe) {
		return &RejectedError{Open: oe}
	}
	return err // a claim interrupted by the caller's context: its own error
}

// circuits finds the circuit of a call.
type circuits struct {
	o       options
	f       *purgatory.Factory
	group   *purgatory.Group // per target
	targets sync.Map         // per method: target -> *purgatory.Group
}

func newCircuits(f *purgatory.Factory, opts []Option) *circuits {
	if f == nil {
		f = purgatory.Default()
	}
	c := &circuits{f: f, o: options{prefix: DefaultPrefix, isFailure: IsFailure}}
	for _, opt := range opts {
		opt(&c.o)
	}
	switch {
	case c.o.prefix == "":
		panic(`grpccircuit: WithPrefix("")`)
	case c.o.isFailure == nil:
		panic("grpccircuit: WithFailure(nil)")
	}
	if !c.o.perMethod {
		c.group = f.Group(c.o.prefix, c.o.cfg, c.o.groupOpts...)
	}
	return c
}

func (c *circuits) breaker(cc *grpc.ClientConn, method string) *purgatory.Breaker {
	target := ""
	if cc != nil {
		target = cc.Target()
	}
	if c.group != nil {
		return c.group.Breaker(target)
	}
	g, ok := c.targets.Load(target)
	if !ok {
		g, _ = c.targets.LoadOrStore(target, c.f.Group(c.o.prefix+"/"+target, c.o.cfg, c.o.groupOpts...))
	}
	return g.(*purgatory.Group).Breaker(strings.TrimPrefix(method, "/"))
}

// done reports a call's result to b.
func (c *circuits) done(ctx context.Context, b *purgatory.Breaker, t purgatory.Token, err error) {
	switch {
	case err == nil:
		b.Done(ctx, t, nil)
	case c.o.isFailure(err):
		b.Done(ctx, t, err)
	case isCanceled(err):
		b.Done(nil, t, context.Canceled) // no context: a cancellation counts as neither
	default:
		b.Done(ctx, t, nil) // the server answered
	}
}

// UnaryClientInterceptor returns an interceptor that sends each unary
// call through the circuit of its target (its method, with [PerMethod]),
// made with factory ([purgatory.Default] if nil) on first use. A rejected
// call returns a [*RejectedError] without being sent. It panics if an
// option gives an empty prefix or a nil function.
func UnaryClientInterceptor(factory *purgatory.Factory, opts ...Option) grpc.UnaryClientInterceptor {
	c := newCircuits(factory, opts)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		b := c.breaker(cc, method)
		t, err := b.Allow(ctx)
		if err != nil {
			return rejected(err)
		}
		done := false
		defer func() {
			if !done {
				b.Done(ctx, t, purgatory.ErrPanicked)
			}
		}()
		err = invoker(ctx, method, req, reply, cc, callOpts...)
		done = true
		c.done(ctx, b, t, err)
		return err
	}
}

// StreamClientInterceptor returns an interceptor that sends each stream
// through the circuit of its target (its method, with [PerMethod]). A
// stream counts once: as the error of its creation, or else as how it
// ends — RecvMsg returning io.EOF (a success) or an error, or, for a
// stream with one response, RecvMsg returning it. A stream abandoned
// before it ends is not counted (a half-open trial's slot comes back when
// its lease runs out). It panics as [UnaryClientInterceptor] does.
func StreamClientInterceptor(factory *purgatory.Factory, opts ...Option) grpc.StreamClientInterceptor {
	c := newCircuits(factory, opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		b := c.breaker(cc, method)
		t, err := b.Allow(ctx)
		if err != nil {
			return nil, rejected(err)
		}
		done := false
		defer func() {
			if !done {
				b.Done(ctx, t, purgatory.ErrPanicked)
			}
		}()
		s, err := streamer(ctx, desc, cc, method, callOpts...)
		done = true
		if err != nil {
			c.done(ctx, b, t, err)
			return nil, err
		}
		return &stream{ClientStream: s, c: c, b: b, t: t, ctx: ctx, single: !desc.ServerStreams}, nil
	}
}

// stream reports how a stream ends, once.
type stream struct {
	grpc.ClientStream
	c        *circuits
	b        *purgatory.Breaker
	t        purgatory.Token
	ctx      context.Context
	single   bool // one response: the first RecvMsg that succeeds ends it
	reported atomic.Bool
}

func (s *stream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == io.EOF:
		s.report(nil)
	case err != nil:
		s.report(err)
	case s.single:
		s.report(nil)
	}
	return err
}

func (s *stream) report(err error) {
	if s.reported.CompareAndSwap(false, true) {
		s.c.done(s.ctx, s.b, s.t, err)
	}
}
