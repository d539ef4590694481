package runtime_test

import (
	goruntime "runtime"
	"strconv"
	"testing"

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
	}{
		{"plain", false, false, false, purgatory.Config{}},
		{"counting", true, false, false, purgatory.Config{}},
		{"rate", false, false, false, purgatory.Config{FailureRate: 0.5}},
		{"memorystore", false, true, false, purgatory.Config{}},
		{"group", false, false, true, purgatory.Config{}},
	} {
		counting, shared, grouped := tc.counting, tc.shared, tc.grouped
		b.Run(tc.name, func(b *testing.B) {
			const n = 20_000
			var perCircuit float64
			for b.Loop() {
				var m0, m1 goruntime.MemStats
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
				goruntime.GC()
				goruntime.ReadMemStats(&m1)
				perCircuit = float64(m1.HeapAlloc-m0.HeapAlloc) / n
				goruntime.KeepAlive(f)
				_ = f.Close()
			}
			b.ReportMetric(perCircuit, "B/circuit")
		})
	}
}
