package runtime_test

import (
	"context"
	"errors"
	"testing"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// service is the call the benchmarks guard: an interface method, as a
// generated wrapper's inner client is.
type service interface{ Call(context.Context) error }

type okService struct{ err error }

//go:noinline
func (s *okService) Call(context.Context) error { return s.err }

var errBench = errors.New("bench: failure")

// guarded calls svc through b the way generated code does.
func guarded(ctx context.Context, b *purgatory.Breaker, svc service) error {
	t, err := b.Allow(ctx)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			b.Done(ctx, t, purgatory.ErrPanicked)
		}
	}()
	err = svc.Call(ctx)
	done = true
	b.Done(ctx, t, err)
	return err
}

func BenchmarkDirect(b *testing.B) {
	ctx := context.Background()
	var svc service = &okService{}
	b.ReportAllocs()
	for b.Loop() {
		_ = svc.Call(ctx)
	}
}

func BenchmarkBreaker(b *testing.B) {
	ctx := context.Background()
	newBreaker := func() *purgatory.Breaker {
		return purgatory.NewFactory().Breaker("bench", purgatory.Config{})
	}
	b.Run("ClosedSuccess", func(b *testing.B) {
		br := newBreaker()
		var svc service = &okService{}
		b.ReportAllocs()
		for b.Loop() {
			_ = guarded(ctx, br, svc)
		}
	})
	b.Run("ClosedSuccessParallel", func(b *testing.B) {
		br := newBreaker()
		var svc service = &okService{}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = guarded(ctx, br, svc)
			}
		})
	})
	b.Run("OpenReject", func(b *testing.B) {
		br := newBreaker()
		br.Open()
		var svc service = &okService{}
		b.ReportAllocs()
		for b.Loop() {
			if guarded(ctx, br, svc) == nil {
				b.Fatal("not rejected")
			}
		}
	})
	b.Run("ClosedFailureThenSuccess", func(b *testing.B) {
		br := newBreaker()
		bad, good := &okService{err: errBench}, &okService{}
		b.ReportAllocs()
		for b.Loop() {
			_ = guarded(ctx, br, bad)
			_ = guarded(ctx, br, good)
		}
	})
	b.Run("Do", func(b *testing.B) {
		br := newBreaker()
		var svc service = &okService{}
		b.ReportAllocs()
		for b.Loop() {
			_ = br.Do(ctx, svc.Call)
		}
	})
}
