package runtime_test

import (
	"context"
	"errors"
	goruntime "runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
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
	b.Run("HalfOpenReject", func(b *testing.B) {
		clk := clocktest.New(time.Unix(0, 0))
		br := purgatory.NewFactory(purgatory.WithClock(clk)).Breaker("bench", purgatory.Config{Threshold: 1, TTL: time.Second})
		_ = guarded(ctx, br, &okService{err: errBench})
		clk.Advance(time.Second)
		if _, err := br.Allow(ctx); err != nil { // the trial, never reported
			b.Fatal(err)
		}
		var svc service = &okService{}
		b.ReportAllocs()
		for b.Loop() {
			if guarded(ctx, br, svc) == nil {
				b.Fatal("not rejected")
			}
		}
	})
	b.Run("ClosedSuccessRate", func(b *testing.B) {
		br := purgatory.NewFactory().Breaker("bench", purgatory.Config{FailureRate: 0.5, Window: time.Minute})
		var svc service = &okService{}
		b.ReportAllocs()
		for b.Loop() {
			_ = guarded(ctx, br, svc)
		}
	})
	b.Run("ClosedSuccessRateParallel", func(b *testing.B) {
		br := purgatory.NewFactory().Breaker("bench", purgatory.Config{FailureRate: 0.5, Window: time.Minute})
		var svc service = &okService{}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = guarded(ctx, br, svc)
			}
		})
	})
	b.Run("ClosedSuccessCounted", func(b *testing.B) {
		f := purgatory.NewFactory()
		f.CountCalls()
		br := f.Breaker("bench", purgatory.Config{})
		var svc service = &okService{}
		b.ReportAllocs()
		for b.Loop() {
			_ = guarded(ctx, br, svc)
		}
	})
	b.Run("ClosedSuccessCountedParallel", func(b *testing.B) {
		f := purgatory.NewFactory()
		f.CountCalls()
		br := f.Breaker("bench", purgatory.Config{})
		var svc service = &okService{}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = guarded(ctx, br, svc)
			}
		})
	})
	b.Run("Lookup", func(b *testing.B) {
		f := purgatory.NewFactory(purgatory.WithExclude(purgatory.Is(errBench)))
		f.Breaker("bench", purgatory.Config{})
		b.ReportAllocs()
		for b.Loop() {
			f.Breaker("bench", purgatory.Config{})
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

// BenchmarkIdleOpenCircuits opens 100,000 circuits and measures what they
// cost while nobody calls them, over one second of the real clock: CPU
// time and bytes allocated per second.
func BenchmarkIdleOpenCircuits(b *testing.B) {
	const n = 100_000
	var m0, m1 goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&m0)
	f := purgatory.NewFactory(purgatory.WithTTL(time.Hour))
	for i := range n {
		f.Breaker("host-"+strconv.Itoa(i), purgatory.Config{}).Open()
	}
	goruntime.GC()
	goruntime.ReadMemStats(&m1)
	perCircuit := float64(m1.HeapAlloc-m0.HeapAlloc) / n
	for b.Loop() {
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		cpu0 := cpuTime()
		time.Sleep(time.Second)
		cpu := cpuTime() - cpu0
		goruntime.ReadMemStats(&after)
		b.ReportMetric(float64(cpu)/float64(time.Millisecond), "cpu-ms/s")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc), "B-alloc/s")
		b.ReportMetric(perCircuit, "B/circuit")
	}
	_ = f.Close()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
