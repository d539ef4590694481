// Package exporttest holds what the exporters' tests share.
package exporttest

import (
	"fmt"
	goruntime "runtime"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// HeapPerRemovedCircuit measures the heap that stays, per circuit, after
// circuits of f are created, scraped (by collect), opened, removed, and
// moved to half-open by their own timers after the removal (their breakers
// still exist and still send events). f must run on clock and open
// circuits for at most a second. A first round lets maps and pools reach
// their size; the second is measured.
func HeapPerRemovedCircuit(f *purgatory.Factory, clock *clocktest.Clock, collect func()) float64 {
	const n = 500
	round := func(r int) {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("round%d/host%d", r, i)
			f.Breaker(names[i], purgatory.Config{TTL: time.Second}).Open()
		}
		collect()
		for _, name := range names {
			f.Remove(name)
		}
		clock.Advance(time.Second) // every removed breaker: open -> half-open
		collect()
	}
	var m0, m1 goruntime.MemStats
	round(0)
	goruntime.GC()
	goruntime.ReadMemStats(&m0)
	round(1)
	goruntime.GC()
	goruntime.ReadMemStats(&m1)
	return (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / n
}
