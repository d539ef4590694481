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
// holding 2^31 calls asks for a merge (see rater.record), so neither half
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

// rater is a rate circuit's part of its breaker: the tally of the closed
// generation's calls not merged into the store's window yet, and their
// merges. register makes it for a circuit with a failure rate, once its
// settings are final; other circuits have none.
type rater struct {
	b        *Breaker              // its breaker: immutable
	tally    atomic.Pointer[tally] // the unmerged calls of the closed generation
	merged   atomic.Int64          // the window bucket of this process's last merge
	flushing atomic.Bool           // a flush is under way or armed
}

// record counts a call admitted in the closed generation gen into the
// tally, and merges the tally into the window at once when it could trip
// the circuit, or arms the periodic merge. A call of a generation that
// ended is not counted: its window is gone.
func (r *rater) record(gen uint64, failed bool) {
	tl := r.tally.Load()
	if tl == nil || tl.gen != gen {
		return
	}
	if tl.add(failed) || failed && r.couldTrip(tl) {
		r.flush()
		return
	}
	if !r.flushing.Load() {
		r.armFlush()
	}
}

// follow makes the tally follow the circuit's snapshot s: a new closed
// generation counts afresh, and the counts of one that ended no longer
// matter. b.mu is held.
func (r *rater) follow(s *store.Snapshot) {
	if s.State == Closed {
		if tl := r.tally.Load(); tl == nil || tl.gen != s.Gen {
			r.tally.Store(newTally(s.Gen))
		}
	} else if r.tally.Load() != nil {
		r.tally.Store(nil)
	}
}

// unmerged returns the calls of the closed generation gen not merged yet.
func (r *rater) unmerged(gen uint64) (calls, failed uint64) {
	if tl := r.tally.Load(); tl != nil && tl.gen == gen {
		return tl.sum()
	}
	return 0, 0
}

// armFlush arms the periodic flush of the local counts.
func (r *rater) armFlush() {
	if r.flushing.CompareAndSwap(false, true) {
		r.b.f.clock.AfterFunc(max(r.b.set.Window/store.Buckets, time.Millisecond), r.tick)
	}
}

// couldTrip reports whether the local counts, with the window as last
// merged, reach the circuit's failure rate. The window's totals are exact
// only within the bucket they were merged in: once a bucket boundary has
// passed since, some of them may have aged out, and the local counts are
// merged at once (at most once per bucket) so that the store decides on
// the window as it is now.
func (r *rater) couldTrip(tl *tally) bool {
	b := r.b
	calls, failed := tl.sum()
	now := r.bucketOf(b.f.clock.Now())
	b.mu.Lock()
	mc, mf := uint64(b.snap.Calls), uint64(b.snap.Failed)
	b.mu.Unlock()
	if mc > 0 && now != r.merged.Load() {
		return true
	}
	calls += mc
	failed += mf
	return calls >= uint64(max(b.set.MinCalls, 1)) && float64(failed) >= b.set.FailureRate*float64(calls)
}

// bucketOf returns the index of the window bucket of t, as [store.Window]
// counts them.
func (r *rater) bucketOf(t time.Time) int64 {
	return t.UnixNano() / int64(max(r.b.set.Window/store.Buckets, 1))
}

func (r *rater) tick() {
	r.flush()
	r.flushing.Store(false)
	if tl := r.tally.Load(); tl != nil {
		if calls, _ := tl.sum(); calls > 0 {
			r.armFlush()
		}
	}
}

// flush merges the local counts into the store's window.
func (r *rater) flush() {
	tl := r.tally.Load()
	if tl == nil {
		return
	}
	calls, failed := tl.take()
	if calls == 0 {
		return
	}
	b := r.b
	if w := b.view.Load(); word(w).state() != Closed || word(w).gen() != tl.gen {
		return // counts of a closed period that ended: they no longer matter
	}
	r.merged.Store(r.bucketOf(b.f.clock.Now()))
	b.pushCounts(tl.gen, store.Record, false, int(calls), int(failed))
}
