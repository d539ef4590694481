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

// redisCPU returns the microseconds Redis spent in commands so far (the sum
// of usec over INFO commandstats).
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
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
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
func benchmarkFailures(b *testing.B, st store.Store, srv *server) {
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
			if err := br.Do(ctx, fail); err != errBoom {
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
		time.Sleep(100 * time.Millisecond) // let the last pushes land
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
	benchmarkFailures(b, st, srv)
}

// BenchmarkFailures64Memory: the same on a shared memory store, for the
// comparison of the caller's failure path.
func BenchmarkFailures64Memory(b *testing.B) {
	benchmarkFailures(b, store.NewMemory(), nil)
}
