package redis

import (
	"context"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// redisCPU returns the microseconds Redis spent in script calls so far
// (usec of EVALSHA and EVAL in INFO commandstats; the commands a script
// runs are counted within it, and again on their own lines, which are
// left out). The store sends no other data command.
func redisCPU(b *testing.B, srv *server) int64 {
	b.Helper()
	c := newClient(b, srv)
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		_, rest, ok := strings.Cut(line, "usec=")
		if !ok || !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err == nil {
			total += n
		}
	}
	return total
}

// benchmarkFailures runs failing calls from 64 goroutines and reports, for
// a Redis store, the Redis CPU per failing call (INFO commandstats) and
// how many calls took longer than the store timeout (slow/op, ×1e6).
func benchmarkFailures(b *testing.B, st store.Store, srv *server, work time.Duration) {
	var opts []purgatory.Option
	if st != nil {
		opts = append(opts, purgatory.WithStore(st))
	}
	br := purgatory.NewFactory(opts...).Breaker("bench", purgatory.Config{Threshold: 1_000_000, TTL: time.Minute})
	ctx := context.Background()
	_ = br.Do(ctx, fail)
	var slow atomic.Int64
	var cpu int64
	if srv != nil {
		cpu = redisCPU(b, srv)
	}
	b.ReportAllocs()
	b.SetParallelism((64 + goruntime.GOMAXPROCS(0) - 1) / goruntime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			if err := br.Do(ctx, func(context.Context) error {
				if work > 0 {
					time.Sleep(work) // the failing backend's own time
				}
				return errBoom
			}); err != errBoom {
				b.Error(err)
				return
			}
			if time.Since(start) >= DefaultTimeout {
				slow.Add(1)
			}
		}
	})
	b.StopTimer()
	if srv != nil {
		// Let the last pushes land: every failure counted once.
		rs := st.(*Store)
		deadline := time.Now().Add(10 * time.Second)
		for {
			snap, _, err := rs.get(ctx, "bench")
			if err == nil && snap.Failures == b.N+1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("Redis counted %d failures, want %d", snap.Failures, b.N+1)
			}
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(redisCPU(b, srv)-cpu)/float64(b.N), "redis-µs/op")
	}
	b.ReportMetric(float64(slow.Load()), "past-timeout")
}

// BenchmarkFailures64: failing calls from 64 goroutines on one circuit in
// Redis (the speed target: Redis CPU per failing call).
func BenchmarkFailures64(b *testing.B) {
	srv := needRedis(b)
	c := newClient(b, srv)
	st := New(c, WithPrefix(testPrefix()))
	b.Cleanup(func() { _ = st.Close() })
	benchmarkFailures(b, st, srv, 0)
}

// BenchmarkFailures64Paced: the same with a backend that takes 100 µs to
// fail, so that failures arrive at the pace of real calls.
func BenchmarkFailures64Paced(b *testing.B) {
	srv := needRedis(b)
	c := newClient(b, srv)
	st := New(c, WithPrefix(testPrefix()))
	b.Cleanup(func() { _ = st.Close() })
	benchmarkFailures(b, st, srv, 100*time.Microsecond)
}

// BenchmarkFailures64Memory: the same on a shared memory store, for the
// comparison of the caller's failure path.
func BenchmarkFailures64Memory(b *testing.B) {
	benchmarkFailures(b, store.NewMemory(), nil, 0)
}

// BenchmarkFailures64MemoryPaced: the paced run on a memory store.
func BenchmarkFailures64MemoryPaced(b *testing.B) {
	benchmarkFailures(b, store.NewMemory(), nil, 100*time.Microsecond)
}

// BenchmarkScriptFailure: one failure script call after another, straight
// on the store: the Redis CPU one script call costs.
func BenchmarkScriptFailure(b *testing.B) {
	srv := needRedis(b)
	st := New(newClient(b, srv), WithPrefix(testPrefix()))
	b.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	set := store.Settings{Threshold: 1_000_000, TTL: time.Minute, Trials: 1}
	_, snap, err := st.Register(ctx, "script", set)
	if err != nil {
		b.Fatal(err)
	}
	op := store.Op{Circuit: "script", Settings: set, Gen: snap.Gen, Now: time.Unix(1_700_000_000, 0)}
	cpu := redisCPU(b, srv)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := st.Failure(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(redisCPU(b, srv)-cpu)/float64(b.N), "redis-µs/op")
}
