package runtime

import (
	"context"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: half-open trials: claiming a slot (a lease in the store),
// the token that holds it, and the trial's result.

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
		case Open:
			return 0, b.reject(w, b.openErr.Load())
		case Isolated:
			return 0, b.reject(w, b.isoErr)
		}
		if w&fullBit != 0 {
			return 0, b.reject(w, b.trialErr.Load())
		}
		if ctx != nil && ctx.Err() != nil {
			return 0, ctx.Err() // the caller hung up: take no slot, mark nothing
		}
		snap, granted := b.update(ctx, word(w).gen(), &store.Change{Kind: store.Claim})
		if granted {
			b.mu.Lock()
			if b.snap.Gen == snap.Gen && b.snap.State == HalfOpen && b.held < b.set.Trials {
				slot := b.takeSlotLocked()
				b.mu.Unlock()
				return b.token((snap.Gen&genMask)<<genShift|uint64(HalfOpen)|slot<<slotShift, b.cfg.SlowCall > 0), nil
			}
			b.mu.Unlock()
			// The slot came too late for this generation, or this process
			// holds every slot already (the store lost track of ours).
			b.update(nil, snap.Gen, &store.Change{Kind: store.Release})
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
			if b.snap.Gen == snap.Gen && b.timer != nil {
				b.view.Store(b.viewOf(b.snap) | fullBit)
			}
			b.mu.Unlock()
			return 0, b.reject(w, b.trialErr.Load())
		}
	}
	w := b.view.Load()
	return 0, b.reject(w, b.trialErr.Load())
}

// takeSlotLocked picks the number of a held trial slot for a token. b.mu
// is held. Beyond maxSlots trials, slots share the last number and a
// second report of one of them is not detected.
func (b *Breaker) takeSlotLocked() uint64 {
	b.held++
	defer b.view.Store(b.viewOf(b.snap))
	for i := range maxSlots - 1 {
		if b.slots&(1<<i) == 0 {
			b.slots |= 1 << i
			return uint64(i)
		}
	}
	return maxSlots - 1
}

// trialDone takes the result of a half-open trial.
func (b *Breaker) trialDone(t Token, o outcome, err error) {
	slot := uint32(1) << (t >> slotShift & (maxSlots - 1))
	b.mu.Lock()
	gen := b.snap.Gen
	if !sameGen(b.viewOf(b.snap), t) || b.snap.State != HalfOpen || b.slots&slot == 0 {
		b.mu.Unlock()
		b.count(b.view.Load(), o)
		return // an old generation's trial, or reported twice
	}
	if b.set.Trials < maxSlots || slot != 1<<(maxSlots-1) {
		b.slots &^= slot
	}
	b.held--
	b.view.Store(b.viewOf(b.snap))
	b.mu.Unlock()
	b.count(b.view.Load(), o)
	switch o {
	case success, excluded:
		b.push(gen, store.Success, true)
	case failure:
		if b.f.listeners.active() {
			b.failed(err)
		}
		b.push(gen, store.Failure, true)
	case ignored:
		b.push(gen, store.Release, true)
	}
}
