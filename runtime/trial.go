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

// dropLocalLeasesLocked forgets the trials granted on local state: a
// diverged state met the store (pushed, or the record won), so the
// generation they were granted in is gone even if the record's has the
// same number, and their reports are ignored. b.mu is held; the caller
// installs a snapshot or stores the view afterwards.
func (b *Breaker) dropLocalLeasesLocked() {
	if r := b.rare; r != nil {
		r.leases = slices.DeleteFunc(r.leases, func(l trialLease) bool { return l.local })
	}
}

// allowTrial claims a half-open trial slot.
func (b *Breaker) allowTrial(ctx context.Context) (Token, error) {
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
		granted, local := b.updateFrom(ctx, word(w).gen(), &store.Change{Kind: store.Claim}, &snap)
		if granted {
			var start uint64
			if b.cfg.SlowCall > 0 {
				start = b.micros()
			}
			b.mu.Lock()
			if b.snap.Gen == snap.Gen && b.snap.State == HalfOpen && len(b.peek().leases) < b.set.Trials {
				t := b.takeLeaseLocked(snap.Gen, start, local)
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
			if b.snap.Gen == snap.Gen && b.peek().timer != nil {
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
func (b *Breaker) takeLeaseLocked(gen, start uint64, local bool) Token {
	r := b.edit()
	for {
		r.lastNo = r.lastNo%leaseMask + 1 // 1 … 2^24-1, then 1 again
		if b.leaseLocked(r.lastNo) < 0 {
			break // (a number still held after 2^24 grants is skipped)
		}
	}
	r.leases = append(r.leases, trialLease{no: r.lastNo, local: local, start: start})
	b.view.Store(b.viewOf(&b.snap))
	t := uint64(HalfOpen) | tokenBit | (gen&trialGenMask)<<genShift | uint64(r.lastNo)<<leaseShift
	if local {
		t |= localBit
	}
	return Token(t)
}

// leaseLocked returns the index of the lease numbered no, or -1. b.mu is
// held.
func (b *Breaker) leaseLocked(no uint32) int {
	for i, l := range b.peek().leases {
		if l.no == no {
			return i
		}
	}
	return -1
}

// trialDone takes the result of a half-open trial: once, and only if its
// lease is still held (the generation did not change since).
func (b *Breaker) trialDone(ctx context.Context, t Token, err error) {
	o := b.classify(ctx, err)
	var end uint64
	if b.cfg.SlowCall > 0 && o != ignored {
		end = b.micros()
	}
	b.mu.Lock()
	i := -1
	if sameGen(b.viewOf(&b.snap), t) && b.snap.State == HalfOpen {
		i = b.leaseLocked(uint32(t >> leaseShift & leaseMask))
	}
	if i < 0 {
		b.mu.Unlock()
		b.count(b.view.Load(), o)
		return // an old generation's trial, or reported twice
	}
	r := b.edit()
	start := r.leases[i].start
	r.leases = append(r.leases[:i], r.leases[i+1:]...)
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
func (b *Breaker) giveBack(gen uint64, op store.Kind, local bool) {
	if local {
		b.applyLocal(gen, b.f.clock.Now(), &store.Change{Kind: op}, nil)
		return
	}
	b.push(gen, op, true)
}
