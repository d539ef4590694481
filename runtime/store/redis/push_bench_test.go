package redis

import (
	"cmp"
	"context"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
// how many calls took longer than DefaultTimeout (past-timeout; no call
// waits for the store, so these are the scheduler's delays).
// Each goroutine makes failuresPerCircuit consecutive failures on a
// circuit, then moves to the next one (made on demand in one factory), so
// that no circuit gets near its threshold whatever b.N is; as the
// goroutines move at about the same pace, they mostly share a circuit, and
// its pusher coalesces their failures. With a Redis store, the failures
// counted in Redis, summed over the circuits, must be exactly the calls.
func benchmarkFailures(b *testing.B, st store.Store, srv *server, scriptErr *firstScriptError, work time.Duration) {
	var opts []purgatory.Option
	if st != nil {
		opts = append(opts, purgatory.WithStore(st))
	}
	f := purgatory.NewFactory(opts...)
	ctx := context.Background()
	_ = failureCircuit(f, 0).Do(ctx, fail)
	var slow atomic.Int64
	var cpu int64
	if srv != nil {
		cpu = redisCPU(b, srv)
	}
	parallelism := (64 + goruntime.GOMAXPROCS(0) - 1) / goruntime.GOMAXPROCS(0)
	k := failuresPerCircuit(parallelism * goruntime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		br, circuit, left := failureCircuit(f, 0), 0, k
		for pb.Next() {
			if left == 0 { // the next circuit, well before the threshold
				circuit++
				br, left = failureCircuit(f, circuit), k
			}
			left--
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
		deadline := time.Now().Add(30 * time.Second)
		for {
			failures, err := 0, error(nil)
			for _, br := range f.Breakers() {
				snap, _, gerr := rs.get(ctx, br.Name())
				failures += snap.Failures
				err = cmp.Or(err, gerr)
			}
			if err == nil && failures == b.N+1 {
				break
			}
			if time.Now().After(deadline) || scriptErr.err() != nil {
				if e := scriptErr.err(); e != nil {
					// Failures a script call failed to carry, and those of the
					// back-off after it, are only counted locally.
					b.Errorf("a script call failed: %v", e)
				}
				b.Fatalf("Redis counted %d failures over %d circuits, want %d (err %v)", failures, len(f.Breakers()), b.N+1, err)
			}
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(redisCPU(b, srv)-cpu)/float64(b.N), "redis-µs/op")
	}
	b.ReportMetric(float64(slow.Load()), "past-timeout")
}

// failuresStore returns the Redis store of the 64-goroutine benchmarks.
// Its timeout is far above the default 50 ms: while 64 goroutines keep the
// two CPUs of the shared machine busy, the pusher's goroutine may get to
// read a reply that came in time only seconds later (pushes timed out with
// 50 ms, and a few per run with 1 s), and then the failures it carried, and
// those of the back-off that follows, never reach Redis (the breaker goes
// on with its local state), failing the count check.
func failuresStore(b *testing.B, srv *server) (*Store, *firstScriptError) {
	errs := &firstScriptError{}
	st := New(newClient(b, srv, errs), WithPrefix(testPrefix()), WithTimeout(10*time.Second))
	b.Cleanup(func() { _ = st.Close() })
	return st, errs
}

// firstScriptError is a go-redis hook that keeps the first error of a
// script call but NOSCRIPT (which the client answers with EVAL). It sees
// the store's commands only, not the calls of the breakers.
type firstScriptError struct{ p atomic.Pointer[error] }

func (h *firstScriptError) err() error {
	if h == nil {
		return nil
	}
	if e := h.p.Load(); e != nil {
		return *e
	}
	return nil
}

func (h *firstScriptError) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *firstScriptError) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && strings.HasPrefix(cmd.Name(), "eval") && !goredis.HasErrorPrefix(err, "NOSCRIPT") {
			h.p.CompareAndSwap(nil, &err)
		}
		return err
	}
}

func (h *firstScriptError) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// BenchmarkFailures64: failing calls from 64 goroutines on closed circuits
// in Redis (the speed target: Redis CPU per failing call).
func BenchmarkFailures64(b *testing.B) {
	srv := needRedis(b)
	st, errs := failuresStore(b, srv)
	benchmarkFailures(b, st, srv, errs, 0)
}

// BenchmarkFailures64Paced: the same with a backend that takes 100 µs to
// fail, so that failures arrive at the pace of real calls.
func BenchmarkFailures64Paced(b *testing.B) {
	srv := needRedis(b)
	st, errs := failuresStore(b, srv)
	benchmarkFailures(b, st, srv, errs, 100*time.Microsecond)
}

// BenchmarkFailures64Memory: the same on a shared memory store, for the
// comparison of the caller's failure path.
func BenchmarkFailures64Memory(b *testing.B) {
	benchmarkFailures(b, store.NewMemory(), nil, nil, 0)
}

// BenchmarkFailures64MemoryPaced: the paced run on a memory store.
func BenchmarkFailures64MemoryPaced(b *testing.B) {
	benchmarkFailures(b, store.NewMemory(), nil, nil, 100*time.Microsecond)
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
