package redis

import (
	"context"
	"runtime"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// benchBreaker returns a breaker on a Redis store whose client counts its
// commands.
func benchBreaker(b *testing.B, cfg purgatory.Config, ctxAware bool) (*purgatory.Breaker, *commandCounter) {
	srv := needRedis(b)
	count := &commandCounter{}
	c := goredis.NewClient(&goredis.Options{Addr: srv.addr(), ContextTimeoutEnabled: ctxAware})
	c.AddHook(count)
	b.Cleanup(func() { _ = c.Close() })
	st := New(c, WithPrefix(testPrefix()), WithTimeout(time.Second))
	b.Cleanup(func() { _ = st.Close() })
	return purgatory.NewFactory(purgatory.WithStore(st)).Breaker("bench", cfg), count
}

func reportCommands(b *testing.B, count *commandCounter, before int64) {
	b.ReportMetric(float64(count.n.Load()-before)/float64(b.N), "cmds/op")
}

func BenchmarkClosedSuccess(b *testing.B) {
	br, count := benchBreaker(b, purgatory.Config{Threshold: 5, TTL: time.Minute}, true)
	ctx := context.Background()
	b.ReportAllocs()
	n := count.n.Load()
	b.ResetTimer()
	for range b.N {
		if err := br.Do(ctx, succeed); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCommands(b, count, n)
}

func BenchmarkOpenRejection(b *testing.B) {
	br, count := benchBreaker(b, purgatory.Config{Threshold: 5, TTL: time.Hour}, true)
	ctx := context.Background()
	br.Open()
	if br.State() != purgatory.Open {
		b.Fatal("not open")
	}
	b.ReportAllocs()
	n := count.n.Load()
	b.ResetTimer()
	for range b.N {
		if err := br.Do(ctx, succeed); err == nil {
			b.Fatal("not rejected")
		}
	}
	b.StopTimer()
	reportCommands(b, count, n)
}

func benchmarkFailure(b *testing.B, ctxAware bool) {
	br, count := benchBreaker(b, purgatory.Config{Threshold: 1 << 30, TTL: time.Minute}, ctxAware)
	ctx := context.Background()
	_ = br.Do(ctx, fail) // load the script, warm the pool
	b.ReportAllocs()
	n := count.n.Load()
	b.ResetTimer()
	for range b.N {
		if err := br.Do(ctx, fail); err != errBoom {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCommands(b, count, n)
	if br.State() != purgatory.Closed {
		b.Fatal("opened")
	}
}

// BenchmarkFailure: one EVALSHA per failure.
func BenchmarkFailure(b *testing.B) { benchmarkFailure(b, true) }

// BenchmarkFailureNoContextTimeout: the same with a client that ignores
// context deadlines, where the store bounds each call with a goroutine.
func BenchmarkFailureNoContextTimeout(b *testing.B) { benchmarkFailure(b, false) }

// BenchmarkPropagation measures how long a state change made in one
// factory takes to reach another (over pub/sub): each op opens the circuit
// through one factory, waits until the other sees it open, closes it and
// waits until the other sees it closed, so an op is two round trips and two
// propagations.
func BenchmarkPropagation(b *testing.B) {
	srv := needRedis(b)
	prefix := testPrefix()
	mk := func() *purgatory.Breaker {
		st := New(newClient(b, srv), WithPrefix(prefix), WithTimeout(time.Second))
		b.Cleanup(func() { _ = st.Close() })
		return purgatory.NewFactory(purgatory.WithStore(st)).Breaker("prop", purgatory.Config{Threshold: 5, TTL: time.Hour})
	}
	x, y := mk(), mk()
	wait := func(s purgatory.State) {
		deadline := time.Now().Add(10 * time.Second)
		for y.State() != s {
			if time.Now().After(deadline) {
				b.Fatalf("the other factory never saw %v", s)
			}
			runtime.Gosched() // 2 cores: let the subscriber run
		}
	}
	x.Open() // let both subscriptions settle
	wait(purgatory.Open)
	b.ResetTimer()
	for range b.N {
		x.Close()
		wait(purgatory.Closed)
		x.Open()
		wait(purgatory.Open)
	}
}
