package prometheus_test

import (
	"context"
	"testing"

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
