package redis

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// benchFactory returns a factory on a Redis store whose client counts its
// commands.
func benchFactory(b *testing.B, ctxAware bool) (*purgatory.Factory, *commandCounter) {
	srv := needRedis(b)
	count := &commandCounter{}
	c := goredis.NewClient(&goredis.Options{Addr: srv.addr(), ContextTimeoutEnabled: ctxAware})
	c.AddHook(count)
	b.Cleanup(func() { _ = c.Close() })
	st := New(c, WithPrefix(testPrefix()), WithTimeout(time.Second))
	b.Cleanup(func() { _ = st.Close() })
	return purgatory.NewFactory(purgatory.WithStore(st)), count
}

// benchBreaker returns a breaker on a Redis store whose client counts its
// commands.
func benchBreaker(b *testing.B, cfg purgatory.Config, ctxAware bool) (*purgatory.Breaker, *commandCounter) {
	f, count := benchFactory(b, ctxAware)
	return f.Breaker("bench", cfg), count
}

// failureConfig is the circuit of the failure benchmarks: the highest
// threshold a store accepts.
var failureConfig = purgatory.Config{Threshold: store.MaxCount, TTL: time.Minute}

// failureCircuit returns circuit i of the failure benchmarks in f, making
// it on first use (a later lookup is a map read). The benchmarks move to
// the next circuit before one can reach failureConfig.Threshold, so that
// any b.N runs on closed circuits.
func failureCircuit(f *purgatory.Factory, i int) *purgatory.Breaker {
	return f.Breaker("bench"+strconv.Itoa(i), failureConfig)
}

// failuresPerCircuit is how many consecutive failures each of n callers
// makes on one circuit before moving to the next: together they put at
// most half the threshold on a circuit.
func failuresPerCircuit(n int) int {
	return max(1, failureConfig.Threshold/(2*n))
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

// BenchmarkHalfOpenRejection: a call rejected because the only trial slot
// of a half-open circuit is taken. The target is no Redis call (cmds/op 0).
func BenchmarkHalfOpenRejection(b *testing.B) {
	srv := needRedis(b)
	count := &commandCounter{}
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	st := newStore(b, srv, testPrefix(), count)
	br := purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk)).
		Breaker("bench", purgatory.Config{Threshold: 1, TTL: time.Minute, Trials: 1})
	ctx := context.Background()
	_ = br.Do(ctx, fail)
	for deadline := time.Now().Add(10 * time.Second); br.State() != purgatory.Open; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // the failure reaches Redis off the caller's path
			b.Fatal("never opened")
		}
	}
	clk.Advance(time.Minute)
	for deadline := time.Now().Add(10 * time.Second); br.State() != purgatory.HalfOpen; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("never half-open")
		}
	}
	if _, err := br.Allow(ctx); err != nil { // the trial, never reported
		b.Fatal(err)
	}
	if err := br.Do(ctx, succeed); err == nil {
		b.Fatal("not rejected")
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

// BenchmarkFailureReset: a failure then a success (which resets the
// pending failure): the failure path's round trips per pair.
func BenchmarkFailureReset(b *testing.B) {
	br, count := benchBreaker(b, purgatory.Config{Threshold: 1_000_000, TTL: time.Minute}, true)
	ctx := context.Background()
	_ = br.Do(ctx, fail)
	_ = br.Do(ctx, succeed)
	b.ReportAllocs()
	n := count.n.Load()
	b.ResetTimer()
	for range b.N {
		_ = br.Do(ctx, fail)
		_ = br.Do(ctx, succeed)
	}
	b.StopTimer()
	reportCommands(b, count, n)
}

func benchmarkFailure(b *testing.B, ctxAware bool) {
	f, count := benchFactory(b, ctxAware)
	ctx := context.Background()
	br := failureCircuit(f, 0)
	_ = br.Do(ctx, fail) // load the script, warm the pool
	k := failuresPerCircuit(1)
	b.ReportAllocs()
	n := count.n.Load()
	b.ResetTimer()
	for i, left := 0, k; i < b.N; i++ {
		if left == 0 { // the next circuit, well before the threshold
			br, left = failureCircuit(f, i/k), k
		}
		left--
		if err := br.Do(ctx, fail); err != errBoom {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCommands(b, count, n)
	for _, br := range f.Breakers() {
		if br.State() != purgatory.Closed {
			b.Fatalf("%s opened", br.Name())
		}
	}
}

// BenchmarkFailure: consecutive failures of a closed circuit, each sent to
// the Redis failure script (coalesced by the circuit's pusher). One
// circuit takes at most half its threshold of failures, then the calls
// move to the next one (made on demand, once per 500_000 calls), so that
// no circuit opens whatever b.N is.
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
	lat := make([]time.Duration, 0, 2*b.N)
	b.ResetTimer()
	for range b.N {
		x.Close()
		start := time.Now()
		wait(purgatory.Closed)
		lat = append(lat, time.Since(start))
		x.Open()
		start = time.Now()
		wait(purgatory.Open)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	// Latency from the end of the store call in x to y's view changing.
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
