package runtime

import "github.com/purgatory-go/purgatory/runtime/store"

// This file: the view word, the one atomic the hot path reads.

// The view word's layout is on [Breaker.view]; these are its masks.
//
// A token is the view word a closed, untimed call was admitted under; Done
// finishes it on its fast path when the view is that generation with no
// flag. A timed token (a closed call of a slow-call circuit, bit 6) keeps
// only the low 16 bits of the generation in bits 8-23 and its start, in
// microseconds modulo 2^40, in bits 24-63: a slow-call circuit compares 16
// bits of generation, and measures calls up to 2^40 µs (12.7 days) long,
// beyond MaxSlowCall (7 days) with room to spare. A trial's token has the
// half-open state, the low 32 bits of the generation in bits 8-39 and the
// number of its lease in bits 40-63 (never 0, so that no closed view of a
// generation below 2^32 matches it on Done's fast path); bit 6 marks a
// trial granted on local state (localBit), whose report never reaches the
// store; a timed trial's start is kept with its lease (see trialLease).
// Both are marked with bit 7 (tokenBit).
const (
	stateMask    = 0b11
	flagMask     = 0xff // the state and every flag: what is not the generation
	pendingBit   = 1 << 2
	staleBit     = 1 << 2 // in an open view
	countBit     = 1 << 3
	rateBit      = 1 << 4
	slowBit      = 1 << 5
	fullBit      = 1 << 6
	tokenBit     = 1 << 7
	timedBit     = 1 << 6 // in a marked token of a closed call
	localBit     = 1 << 6 // in a trial's token: granted on local state
	genShift     = 8
	genMask      = 1<<(64-genShift) - 1
	timedGenMask = 1<<16 - 1
	timedShift   = 24
	timedMask    = 1<<40 - 1
	trialGenMask = 1<<32 - 1
	leaseShift   = 40
	leaseMask    = 1<<24 - 1

	// MaxSlowCall is the longest Config.SlowCall: calls are timed up to
	// 2^40 µs (12.7 days).
	MaxSlowCall = store.MaxPeriod
)

// viewOf returns the view word of snapshot s. b.mu is held.
func (rep *replica) viewOf(s *store.Snapshot) uint64 {
	b := rep.b
	w := uint64(s.State) | (s.Gen&genMask)<<genShift
	if b.f.counting.Load() {
		w |= countBit
	}
	switch s.State {
	case Open:
		if b.peek().stale {
			w |= staleBit
		}
	case Closed:
		if s.Failures > 0 || b.link != nil && b.link.pushq.Load().owes(s.Gen) {
			w |= pendingBit // a success resets: the store's count or this process's queued failure
		}
		if b.set.FailureRate > 0 {
			w |= rateBit
		}
		if b.cfg.SlowCall > 0 {
			w |= slowBit
		}
	case HalfOpen:
		if b.peek().leases.n() >= b.set.Trials || s.Claimed >= b.set.Trials {
			w |= fullBit
		}
	}
	return w
}

// sameGen reports whether view word w is of the generation token t was
// admitted in: all 56 bits, or the 32 a trial's token keeps, or the 16 a
// timed token keeps.
func sameGen(w uint64, t Token) bool {
	if word(t).state() == HalfOpen {
		return w>>genShift&trialGenMask == uint64(t)>>genShift&trialGenMask
	}
	if t&timedBit != 0 {
		return w>>genShift&timedGenMask == uint64(t)>>genShift&timedGenMask
	}
	return w>>genShift == uint64(t)>>genShift
}

// word is a view word (or a token) read once, with accessors for the slow
// paths; Allow and Done use the masks directly, to stay inlinable.
type word uint64

// state returns the state bits.
func (w word) state() State { return State(w & stateMask) }

// gen returns the generation (all of it for a view word or an untimed
// token).
func (w word) gen() uint64 { return uint64(w) >> genShift }
