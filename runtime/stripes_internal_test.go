package runtime

import (
	"sync"
	"testing"
)

// TestStripesSpreadExactly counts on one line, spreads, counts on the
// per-processor lines from many goroutines at once, and reads exact sums.
func TestStripesSpreadExactly(t *testing.T) {
	s := new(stripeSet)
	if s.many.Load() != nil {
		t.Fatal("spread before any collision")
	}
	for range 3 {
		s.add(offSuccess)
	}
	s.spread()
	if s.many.Load() == nil {
		t.Fatal("not spread")
	}
	const goroutines, each = 8, 1000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				s.add(offSuccess)
				s.add(offRejected)
			}
		}()
	}
	wg.Wait()
	if got, want := s.sum(successOf), uint64(3+goroutines*each); got != want {
		t.Fatalf("sum: %d, want %d", got, want)
	}
	if got, want := s.sum(rejectedOf), uint64(goroutines*each); got != want {
		t.Fatalf("sum of rejections: %d, want %d", got, want)
	}
}

// TestStripesCountExactlyWhileSpreading adds from many goroutines to
// counters that start on one line (they may spread meanwhile, when the
// goroutines collide): no add is lost.
func TestStripesCountExactlyWhileSpreading(t *testing.T) {
	s := new(stripeSet)
	const goroutines, each = 8, 5000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				s.add(offRejected)
			}
		}()
	}
	wg.Wait()
	if got, want := s.sum(rejectedOf), uint64(goroutines*each); got != want {
		t.Fatalf("sum: %d, want %d", got, want)
	}
	t.Logf("spread: %v after %d collisions", s.many.Load() != nil, s.collisions.Load())
}

// TestTallySpreadsExactly counts calls and failures on a tally's first
// line, spreads it, counts from many goroutines, and takes exact totals.
func TestTallySpreadsExactly(t *testing.T) {
	tl := newTally(1)
	tl.add(true)
	tl.add(false)
	if tl.many.Load() != nil {
		t.Fatal("spread before any collision")
	}
	lines := make([]tallyStripe, stripeCount())
	tl.many.Store(&lines)
	const goroutines, each = 8, 1000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tl.add(i%4 == 0)
			}
		}()
	}
	wg.Wait()
	if calls, failed := tl.sum(); calls != 2+goroutines*each || failed != 1+goroutines*each/4 {
		t.Fatalf("sum: %d calls %d failed", calls, failed)
	}
	if calls, failed := tl.take(); calls != 2+goroutines*each || failed != 1+goroutines*each/4 {
		t.Fatalf("take: %d calls %d failed", calls, failed)
	}
	if calls, failed := tl.sum(); calls != 0 || failed != 0 {
		t.Fatalf("after take: %d calls %d failed", calls, failed)
	}
}
