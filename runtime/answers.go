package runtime

import (
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: the store's answers and announcements: which of them the
// replica adopts, and how (see storeLink).

// watched takes a snapshot the store announced.
func (l *storeLink) watched(s store.Snapshot) { l.adopt(s) }

// adopt makes s, which the store vouched for, the circuit's snapshot if it
// is newer than what the store said before (by Seq, or by generation for a
// record that went back in time), and tells the listeners.
func (l *storeLink) adopt(s store.Snapshot) {
	b := l.b
	if s.Seq <= l.storeSeq.Load() && s.Gen <= b.view.Load()>>genShift {
		return // our own change coming back, or an old one: no lock
	}
	var now time.Time
	if s.State != Closed || s.Gen != b.view.Load()>>genShift {
		now = b.f.clock.Now() // a closed count changing needs no clock
	}
	b.mu.Lock()
	installed := l.adoptLocked(s, now)
	b.mu.Unlock()
	if installed {
		b.drain()
	}
}

// adoptLocked is adopt's work under b.mu, now the time if it was read
// already (else zero). It reports whether it installed s.
func (l *storeLink) adoptLocked(s store.Snapshot, now time.Time) bool {
	b := l.b
	if r := b.peek(); s.Seq <= l.storeSeq.Load() && s.Gen <= b.snap.Gen || r.diverged && s.Gen <= r.baseGen {
		// Old; or, while this process's own transitions wait to be pushed,
		// the generation it left, moved on only by counters (a write it
		// gave up on, applied late): that must not revert them.
		return false
	}
	if now.IsZero() && (s.Gen != b.snap.Gen || s.State != b.snap.State) {
		now = b.f.clock.Now()
	}
	seq := max(s.Seq, l.storeSeq.Load())
	if s.Gen > b.snap.Gen {
		// A newer generation with a lower Seq: the record was replaced
		// (restored, repaired). Order from its Seq on, or every later
		// change of this generation would look old.
		seq = s.Seq
	}
	l.installLocked(s, seq, now)
	return true
}

// installLocked makes s, which the store vouched for, the circuit's
// snapshot, with seq the newest Seq the store vouched for. If this process
// had diverged, the record moved on meanwhile: it wins. b.mu is held.
func (l *storeLink) installLocked(s store.Snapshot, seq uint64, now time.Time) {
	b := l.b
	l.installs.Add(1)
	l.storeSeq.Store(seq)
	if r := b.rare; r != nil && r.diverged {
		r.leases.dropLocal()
		r.diverged = false
	}
	b.setLocked(s.Clamp(b.set, now), now)
}

// adoptReply adopts the store's answer to an operation on generation
// asked. An answer is the record at the time of the operation, so one of
// an older generation than asked about means the store lost writes (a
// restore, a failover to a replica that missed them): the store is the
// truth, and it is adopted whatever its Seq.
func (l *storeLink) adoptReply(s store.Snapshot, asked uint64) {
	b := l.b
	if s.Gen >= asked || asked == 0 {
		l.adopt(s)
		return
	}
	now := b.f.clock.Now()
	b.mu.Lock()
	l.installLocked(s, s.Seq, now)
	b.mu.Unlock()
	b.drain()
}

// stepBack takes the store's answer s to an operation on generation asked
// whose Seq is lower than the newest this process had seen when it sent
// it. An answer is the record after the operation, which ran after every
// change this process had seen: so the record stepped back — a forged
// message got through as a counter change (see the Redis store's threat
// model), or the store lost writes. The answer is the truth and is
// installed as it is, its Seq included, so that a forged message lasts
// until the next store call at most (the next reset, claim, or the end of
// the open period or lease); unless something else was installed since
// the operation was sent, which is then ordered with it as usual.
func (l *storeLink) stepBack(s store.Snapshot, asked uint64, installs uint64) {
	b := l.b
	now := b.f.clock.Now()
	b.mu.Lock()
	installed := true
	switch {
	case l.installs.Load() == installs && !b.peek().diverged:
		l.installLocked(s, s.Seq, now)
	case s.Gen >= asked || asked == 0: // as adoptReply, without letting go of mu
		installed = l.adoptLocked(s, now)
	default:
		l.installLocked(s, s.Seq, now)
	}
	b.mu.Unlock()
	if installed {
		b.drain()
	}
}
