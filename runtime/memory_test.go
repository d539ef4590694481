package runtime_test

import (
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// BenchmarkIdleClosedCircuit measures the heap an idle closed circuit
// costs (a per-key circuit that was called once and then not), without and
// with call counting (what an exporter turns on), with a failure-rate
// policy, on a memory store (the store's record and the watch included),
// and as the circuit of a key of a group (the group's hold on it
// included). Run it with -cpu 1,8,32: the cost must not grow with the
// processors.
func BenchmarkIdleClosedCircuit(b *testing.B) {
	for _, tc := range []struct {
		name     string
		counting bool
		shared   bool // a store.Memory: the watch and the store's record count too
		grouped  bool // circuits of a Group's keys
		cfg      purgatory.Config
		// settle is how long the circuits are left before the heap is
		// measured: a rate circuit's counts merge window/10 after its call
		// (a timer that holds it, and that must not fire in a later
		// measurement); after that it is idle.
		settle time.Duration
	}{
		{"plain", false, false, false, purgatory.Config{}, 0},
		{"counting", true, false, false, purgatory.Config{}, 0},
		{"rate", false, false, false, purgatory.Config{FailureRate: 0.5, Window: 100 * time.Millisecond}, 100 * time.Millisecond},
		{"memorystore", false, true, false, purgatory.Config{}, 0},
		{"group", false, false, true, purgatory.Config{}, 0},
	} {
		counting, shared, grouped := tc.counting, tc.shared, tc.grouped
		b.Run(tc.name, func(b *testing.B) {
			const n = 20_000
			var perCircuit float64
			for b.Loop() {
				var m0, m1 goruntime.MemStats
				// The last run's breakers go in two collections: the
				// first runs their cleanups (the watch's), the second
				// frees what those held.
				goruntime.GC()
				time.Sleep(10 * time.Millisecond)
				goruntime.GC()
				goruntime.ReadMemStats(&m0)
				var opts []purgatory.Option
				if shared {
					opts = append(opts, purgatory.WithStore(store.NewMemory()))
				}
				f := purgatory.NewFactory(opts...)
				if counting {
					f.CountCalls()
				}
				g := f.Group("tenants", tc.cfg, purgatory.WithMaxKeys(n))
				for i := range n {
					var br *purgatory.Breaker
					if grouped {
						br = g.Breaker(strconv.Itoa(i))
					} else {
						br = f.Breaker("tenant/"+strconv.Itoa(i), tc.cfg)
					}
					t, _ := br.Allow(b.Context())
					br.Done(b.Context(), t, nil)
				}
				time.Sleep(tc.settle)
				goruntime.GC()
				goruntime.ReadMemStats(&m1)
				if m1.HeapAlloc < m0.HeapAlloc {
					b.Fatalf("the heap shrank during the measurement (%d -> %d B): an earlier run's garbage was freed meanwhile", m0.HeapAlloc, m1.HeapAlloc)
				}
				perCircuit = float64(m1.HeapAlloc-m0.HeapAlloc) / n
				goruntime.KeepAlive(f)
				_ = f.Close()
			}
			b.ReportMetric(perCircuit, "B/circuit")
		})
	}
}
