package runtime

import (
	"sync/atomic"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: the failure-rate policy's local tally of calls and its
// periodic merge into the store's window.

// tally holds a rate circuit's calls not merged into its window yet, for
// one closed generation: a call is counted only into the tally of the
// generation it was admitted in, and a new closed generation starts a new
// tally, so that no call outlives its generation, merged or not.
//
// Each stripe packs calls (high 32 bits) and failures (low 32 bits) into one
// word, so that one add counts a call and its failure together and one
// swap takes both: a merge never holds a failure without its call, and
// adds that race with it land in this merge or the next, whole. A stripe
// holding 2^31 calls asks for a merge (see recordCall), so neither half
// overflows.
//
// Like stripes, a tally counts on one line until goroutines collide on it,
// and only then on per-processor lines, so that an idle rate circuit costs
// the same at any core count.
type tally struct {
	gen        uint64
	one        atomic.Uint64                 // the counts before spreading (and adds that raced with it)
	many       atomic.Pointer[[]tallyStripe] // per-processor lines, once spread
	collisions atomic.Uint32                 // adds to one that raced with another
}

type tallyStripe struct {
	n atomic.Uint64
	_ [56]byte
}

const (
	tallyCall = 1 << 32 // one call
	tallyFail = 1       // one failure
)

func newTally(gen uint64) *tally { return &tally{gen: gen} }

// add counts one call, failed or not, and reports whether its stripe asks
// for a merge.
func (t *tally) add(failed bool) bool {
	d := uint64(tallyCall)
	if failed {
		d |= tallyFail
	}
	if m := t.many.Load(); m != nil {
		lines := *m
		return lines[stackHash()&uintptr(len(lines)-1)].n.Add(d)>>63 != 0
	}
	old := t.one.Load()
	v := t.one.Add(d)
	if v != old+d && t.collisions.Add(1) == spreadAfter {
		lines := make([]tallyStripe, stripeCount())
		t.many.CompareAndSwap(nil, &lines)
	}
	return v>>63 != 0
}

// lines calls fn with every line of t.
func (t *tally) lines(fn func(*atomic.Uint64)) {
	fn(&t.one)
	if m := t.many.Load(); m != nil {
		for i := range *m {
			fn(&(*m)[i].n)
		}
	}
}

// sum returns the counts not merged yet.
func (t *tally) sum() (calls, failed uint64) {
	t.lines(func(l *atomic.Uint64) {
		v := l.Load()
		calls += v >> 32
		failed += v & (tallyCall - 1)
	})
	return calls, failed
}

// take returns the counts not merged yet and zeroes them.
func (t *tally) take() (calls, failed uint64) {
	t.lines(func(l *atomic.Uint64) {
		v := l.Swap(0)
		calls += v >> 32
		failed += v & (tallyCall - 1)
	})
	return calls, failed
}

// recordCall counts a call admitted in the closed generation gen into a
// rate circuit's local tally, and merges the tally into the window at once
// when it could trip the circuit, or arms the periodic merge. A call of a
// generation that ended is not counted: its window is gone.
func (b *Breaker) recordCall(gen uint64, failed bool) {
	tl := b.tally.Load()
	if tl == nil || tl.gen != gen {
		return
	}
	if tl.add(failed) || failed && b.couldTrip(tl) {
		b.flush()
		return
	}
	if !b.flushing.Load() {
		b.armFlush()
	}
}

// armFlush arms the periodic flush of a rate circuit's local counts.
func (b *Breaker) armFlush() {
	if b.flushing.CompareAndSwap(false, true) {
		b.f.clock.AfterFunc(b.flushEvery(), b.flushTick)
	}
}

func (c *conf) flushEvery() time.Duration {
	return max(c.set.Window/store.Buckets, time.Millisecond)
}

// couldTrip reports whether the local counts, with the window as last
// merged, reach the circuit's failure rate. The window's totals are exact
// only within the bucket they were merged in: once a bucket boundary has
// passed since, some of them may have aged out, and the local counts are
// merged at once (at most once per bucket) so that the store decides on
// the window as it is now.
func (b *Breaker) couldTrip(tl *tally) bool {
	calls, failed := tl.sum()
	now := b.bucketOf(b.f.clock.Now())
	b.mu.Lock()
	mc, mf := uint64(b.snap.Calls), uint64(b.snap.Failed)
	b.mu.Unlock()
	if mc > 0 && now != b.merged.Load() {
		return true
	}
	calls += mc
	failed += mf
	return calls >= uint64(max(b.set.MinCalls, 1)) && float64(failed) >= b.set.FailureRate*float64(calls)
}

// bucketOf returns the index of the window bucket of t, as [store.Window]
// counts them.
func (c *conf) bucketOf(t time.Time) int64 {
	return t.UnixNano() / int64(max(c.set.Window/store.Buckets, 1))
}

func (b *Breaker) flushTick() {
	b.flush()
	b.flushing.Store(false)
	if tl := b.tally.Load(); tl != nil {
		if calls, _ := tl.sum(); calls > 0 {
			b.armFlush()
		}
	}
}

// flush merges the local counts into the store's window.
func (b *Breaker) flush() {
	tl := b.tally.Load()
	if tl == nil {
		return
	}
	calls, failed := tl.take()
	if calls == 0 {
		return
	}
	if w := b.view.Load(); word(w).state() != Closed || word(w).gen() != tl.gen {
		return // counts of a closed period that ended: they no longer matter
	}
	b.merged.Store(b.bucketOf(b.f.clock.Now()))
	b.pushCounts(tl.gen, store.Record, false, int(calls), int(failed))
}
