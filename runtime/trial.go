package runtime

import (
	"context"
	"slices"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: half-open trials: claiming a slot (a lease in the store),
// the token that holds it, and the trial's result.

// trialLease is a trial slot held by one of this process's calls: the
// number its token carries, and when it started (slow-call circuits).
// Numbers are drawn from one counter per breaker (24 bits, never 0), so
// a token whose slot was given back matches no later lease: a second
// report of a trial is ignored, whatever was claimed since.
type trialLease struct {
	no    uint32
	local bool   // granted on local state (see giveBack)
	start uint64 // b.micros() at the grant, if the circuit times calls
}

// leases are the trial slots this process's calls hold in the circuit's
// generation. Guarded by the breaker's mu.
type leases struct {
	held   []trialLease
	lastNo uint32 // the number of the last lease granted
}

// n returns how many slots are held.
func (l *leases) n() int { return len(l.held) }

// take records a slot granted and returns its number.
func (l *leases) take(local bool, start uint64) uint32 {
	for {
		l.lastNo = l.lastNo%leaseMask + 1 // 1 … 2^24-1, then 1 again
		if l.find(l.lastNo) < 0 {
			break // (a number still held after 2^24 grants is skipped)
		}
	}
	l.held = append(l.held, trialLease{no: l.lastNo, local: local, start: start})
	return l.lastNo
}

// find returns the index of the lease numbered no, or -1.
func (l *leases) find(no uint32) int {
	return slices.IndexFunc(l.held, func(x trialLease) bool { return x.no == no })
}

// end gives back the lease at index i and returns it.
func (l *leases) end(i int) trialLease {
	x := l.held[i]
	l.held = slices.Delete(l.held, i, i+1)
	return x
}

// endAll gives back every lease: the generation changed.
func (l *leases) endAll() { l.held = l.held[:0] }

// dropLocal forgets the trials granted on local state: a diverged state
// met the store (pushed, or the record won), so the generation they were
// granted in is gone even if the record's has the same number, and their
// reports are ignored. The caller installs a snapshot or stores the view
// afterwards.
func (l *leases) dropLocal() {
	l.held = slices.DeleteFunc(l.held, func(x trialLease) bool { return x.local })
}

// allowTrial claims a half-open trial slot.
func (r *rare) allowTrial(ctx context.Context) (Token, error) {
	b := r.b
	for range 3 {
		w := b.view.Load()
		switch word(w).state() {
		case Closed:
			if w&flagMask == 0 {
				return Token(w), nil
			}
			return b.allowClosed(w), nil
		case Open, Isolated:
			return 0, b.reject(w, b.openErr.Load())
		}
		if w&fullBit != 0 {
			return 0, b.reject(w, b.trialErr.Load())
		}
		if ctx != nil && ctx.Err() != nil {
			return 0, ctx.Err() // the caller hung up: take no slot, mark nothing
		}
		var snap store.Snapshot
		granted, local := b.update(ctx, word(w).gen(), &store.Change{Kind: store.Claim}, &snap)
		if granted {
			var start uint64
			if b.cfg.SlowCall > 0 {
				start = b.micros()
			}
			b.mu.Lock()
			if b.snap.Gen == snap.Gen && b.snap.State == HalfOpen && r.leases.n() < b.set.Trials {
				t := r.takeLeaseLocked(snap.Gen, start, local)
				b.mu.Unlock()
				return t, nil
			}
			b.mu.Unlock()
			// The slot came too late for this generation, or this process
			// holds every slot already (the store lost track of ours).
			if local {
				b.giveBack(snap.Gen, store.Release, true)
			} else {
				b.update(nil, snap.Gen, &store.Change{Kind: store.Release}, nil) // on the caller's path, as the claim
			}
			continue
		}
		if ctx != nil && ctx.Err() != nil {
			// The claim ended with the caller's context (the store may not
			// have answered): nothing is known about the slots.
			return 0, ctx.Err()
		}
		if snap.State == HalfOpen && snap.Gen == word(w).gen() {
			b.mu.Lock()
			// Rejections are marked only while a timer (the lease's) will
			// look again: a view must never stay full with nothing to end it.
			if b.snap.Gen == snap.Gen && r.timer != nil {
				b.view.Store(b.viewOf(&b.snap) | fullBit)
			}
			b.mu.Unlock()
			return 0, b.reject(w, b.trialErr.Load())
		}
	}
	w := b.view.Load()
	return 0, b.reject(w, b.rejection(w))
}

// takeLeaseLocked records a trial slot granted in generation gen (by the
// store, or on local state) and returns its token. b.mu is held.
func (r *rare) takeLeaseLocked(gen, start uint64, local bool) Token {
	b := r.b
	no := r.leases.take(local, start)
	b.view.Store(b.viewOf(&b.snap))
	t := uint64(HalfOpen) | tokenBit | (gen&trialGenMask)<<genShift | uint64(no)<<leaseShift
	if local {
		t |= localBit
	}
	return Token(t)
}

// trialDone takes the result of a half-open trial: once, and only if its
// lease is still held (the generation did not change since).
func (rep *replica) trialDone(ctx context.Context, t Token, err error) {
	b := rep.b
	o := b.classify(ctx, err)
	var end uint64
	if b.cfg.SlowCall > 0 && o != ignored {
		end = b.micros()
	}
	b.mu.Lock()
	i := -1
	if sameGen(b.viewOf(&b.snap), t) && b.snap.State == HalfOpen {
		i = b.peek().leases.find(uint32(t >> leaseShift & leaseMask))
	}
	if i < 0 {
		b.mu.Unlock()
		b.count(b.view.Load(), o)
		return // an old generation's trial, or reported twice
	}
	start := b.edit().leases.end(i).start
	gen := b.snap.Gen
	b.view.Store(b.viewOf(&b.snap))
	b.mu.Unlock()
	if b.cfg.SlowCall > 0 && o != ignored && b.slow(end-start) {
		o, err = failure, &SlowCallError{Circuit: b.name, Err: err}
	}
	b.count(b.view.Load(), o)
	op := store.Release
	switch o {
	case success, excluded:
		op = store.Success
	case failure:
		if b.f.listeners.active() {
			b.failed(err)
		}
		op = store.Failure
	}
	b.giveBack(gen, op, t&localBit != 0)
}

// giveBack reports a trial's result (or a slot it does not use) of
// generation gen. A trial granted on local state reports to the local
// state only: the store never counted its slot, and its generation may be
// one this process numbered itself while the store was away, which the
// store may have given to another lineage of the record since. A
// transition it causes is pushed like every local transition (see
// reconcile).
func (rep *replica) giveBack(gen uint64, op store.Kind, local bool) {
	b := rep.b
	if local {
		b.applyLocal(gen, b.f.clock.Now(), &store.Change{Kind: op}, nil)
		return
	}
	b.push(gen, op, true)
}
