package prometheus_test

import (
	"context"
	goruntime "runtime"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	purgatoryprom "github.com/purgatory-go/purgatory/observe/prometheus"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// BenchmarkClosedSuccess measures a closed success the way generated code
// makes it (Allow, then Done with a nil error), without an exporter and with
// a collector attached (which turns on success counting), on one goroutine
// and on all processors at once.
func BenchmarkClosedSuccess(b *testing.B) {
	for _, exporter := range []bool{false, true} {
		name := "no-exporter"
		if exporter {
			name = "collector"
		}
		setup := func(b *testing.B) *purgatory.Breaker {
			f := purgatory.NewFactory()
			b.Cleanup(func() { _ = f.Close() })
			if exporter {
				c := purgatoryprom.NewCollector(f)
				b.Cleanup(c.Close)
			}
			return f.Breaker("bench", purgatory.Config{})
		}
		b.Run(name, func(b *testing.B) {
			br := setup(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t, err := br.Allow(ctx)
				if err != nil {
					b.Fatal(err)
				}
				br.Done(ctx, t, nil)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			br := setup(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t, err := br.Allow(ctx)
					if err != nil {
						panic(err)
					}
					br.Done(ctx, t, nil)
				}
			})
		})
	}
}

// BenchmarkIdleClosedCircuit measures the heap an idle closed circuit costs
// with a collector attached and scraped (a per-key circuit called once,
// then not), plain and in a keyed group. Run it with -cpu 1,8,32: the cost
// must not grow with the processors.
func BenchmarkIdleClosedCircuit(b *testing.B) {
	for _, grouped := range []bool{false, true} {
		name := "plain"
		if grouped {
			name = "group"
		}
		b.Run(name, func(b *testing.B) {
			const n = 20_000
			var perCircuit float64
			for b.Loop() {
				var m0, m1 goruntime.MemStats
				goruntime.GC()
				goruntime.ReadMemStats(&m0)
				f := purgatory.NewFactory()
				c := purgatoryprom.NewCollector(f)
				g := f.Group("tenants", purgatory.Config{}, purgatory.WithMaxKeys(n))
				for i := range n {
					var br *purgatory.Breaker
					if grouped {
						br = g.Breaker(strconv.Itoa(i))
					} else {
						br = f.Breaker("tenant/"+strconv.Itoa(i), purgatory.Config{})
					}
					t, _ := br.Allow(b.Context())
					br.Done(b.Context(), t, nil)
				}
				testutil.CollectAndCount(c)
				goruntime.GC()
				goruntime.ReadMemStats(&m1)
				perCircuit = float64(m1.HeapAlloc-m0.HeapAlloc) / n
				goruntime.KeepAlive(c)
				c.Close()
				_ = f.Close()
			}
			b.ReportMetric(perCircuit, "B/circuit")
		})
	}
}

// BenchmarkCollect measures one Collect of a keyed group of 10,000
// circuits, exported per group (the default), the metrics drained as a
// registry would.
func BenchmarkCollect(b *testing.B) {
	f := purgatory.NewFactory()
	b.Cleanup(func() { _ = f.Close() })
	g := f.Group("hosts", purgatory.Config{}, purgatory.WithMaxKeys(10_000))
	for i := range 10_000 {
		g.Breaker(strconv.Itoa(i))
	}
	c := purgatoryprom.NewCollector(f)
	b.Cleanup(c.Close)
	ch := make(chan prometheus.Metric, 64)
	drained := make(chan struct{})
	go func() {
		for range ch {
		}
		close(drained)
	}()
	b.Cleanup(func() { close(ch); <-drained })
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
	}
}
