package runtime

import (
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: the local replica of the circuit (guarded by mu): installing
// a snapshot, and the timers of open periods and trial leases.

// setLocked makes s the circuit's snapshot and view, arming the timer of an
// open period or a trial lease of a new generation, and queues the events
// of the change. The error a rejection returns is in place before the view
// says so. now is the time, or zero when the caller did not read the clock
// (an operation that does not need it: Success, Release, a failure that
// does not open the circuit; see [store.Snapshot.Timed]); setLocked reads
// it then if it arms a timer or computes a RetryAfter, so that nothing is
// ever measured from the zero time. b.mu is held.
func (rep *replica) setLocked(s store.Snapshot, now time.Time) {
	b := rep.b
	prev := b.snap
	b.snap = s
	b.changedLocked(&prev, now)
}

// changedLocked is setLocked once b.snap holds the new snapshot, prev the
// one before it: applyLocal changes b.snap in place. b.mu is held.
func (rep *replica) changedLocked(prev *store.Snapshot, now time.Time) {
	b := rep.b
	s := &b.snap
	changed := s.Gen != prev.Gen || s.State != prev.State
	var r *rare
	if s.State != Closed || b.rare != nil {
		r = b.edit() // a circuit that stays closed needs none
	}
	if changed && r != nil {
		r.leases.endAll()
	}
	// Until is zero while closed: a closed count changing compares no times.
	if changed || s.State != Closed && (!s.Until.Equal(prev.Until) || s.Claimed != prev.Claimed) {
		if now.IsZero() && s.State != Closed {
			now = b.f.clock.Now()
		}
		// A lease of this generation with no slot taken in s but one held
		// here keeps its timer: that slot's lease ends on this process's
		// clock (see tick).
		if r != nil && r.timer != nil && (timed(*s) || !r.endsLocked(*s)) {
			r.timer()
			r.timer = nil
		}
		if timed(*s) {
			r.armLocked(*s, now) // s is not closed: r was made
		}
		if s.State == HalfOpen {
			b.trialErr.Store(&OpenError{Circuit: b.name, RetryAfter: max(roundUp(s.Until.Sub(now)), time.Millisecond), state: HalfOpen})
		}
	}
	if b.rate != nil {
		b.rate.follow(s)
	}
	if changed {
		switch s.State {
		case Open:
			if prev.State == Closed || r.openedAt.IsZero() {
				r.openedAt = now
			}
			b.openErr.Store(&OpenError{Circuit: b.name, RetryAfter: roundUp(s.Until.Sub(now))})
			r.stale = false
			b.f.stale(b)
		case Isolated:
			if prev.State == Closed {
				r.openedAt = now
			}
			b.openErr.Store(&OpenError{Circuit: b.name, state: Isolated})
		}
		if prev.State != s.State && prev.Gen != 0 {
			b.events.post(Event{Kind: EventStateChanged, Circuit: b.name, From: prev.State, To: s.State})
			if r.trans == nil {
				r.trans = new(Transitions)
			}
			r.trans[prev.State][s.State]++
			if prev.State == HalfOpen && s.State == Closed && s.Succeeded > 0 { // closed by its trials, not by hand
				b.events.post(Event{Kind: EventRecovered, Circuit: b.name, From: HalfOpen, To: Closed})
			}
		}
	}
	b.view.Store(b.viewOf(s))
}

// timed reports whether s ends by itself: an open period, or a trial lease
// with slots taken.
func timed(s store.Snapshot) bool {
	return s.State == Open || s.State == HalfOpen && s.Claimed > 0
}

// endsLocked reports whether the circuit, at snapshot s, ends by itself:
// s is timed, or this process holds trial slots of s that the store does
// not count (granted on local state, which the store never heard of, or
// forgotten by the store): a record that says no slot is taken must not
// leave them held for ever. b.mu is held.
func (r *rare) endsLocked(s store.Snapshot) bool {
	return timed(s) || s.State == HalfOpen && r.leases.n() > 0
}

// armLocked schedules the end of an open period or trial lease: a lease
// with slots taken, on a shared store, at Until + the clock skew the
// factory tolerates (the store ends it no earlier; see WithClockSkew). A
// circuit the factory dropped keeps its timers: they end by themselves (an
// open period, then at most a lease), and a circuit must not stay open for
// ever because nobody watches it. b.mu is held.
func (r *rare) armLocked(s store.Snapshot, now time.Time) {
	r.armAfterLocked(s.Gen, max(r.endLocked(s).Sub(now), 0))
}

// armAfterLocked arms the timer of generation gen to tick after d. b.mu is
// held.
func (r *rare) armAfterLocked(gen uint64, d time.Duration) {
	b := r.b
	r.timer = b.f.clock.AfterFunc(d, func() { r.tick(gen) })
}

// endLocked is when this process asks the store to end s: its Until, or
// for a trial lease on a shared store, Until + the factory's clock skew.
// b.mu is held.
func (r *rare) endLocked(s store.Snapshot) time.Time {
	b := r.b
	if s.State == HalfOpen && !b.storeless() {
		return s.Until.Add(b.f.skew)
	}
	return s.Until
}

// tick runs at the end of an open period or trial lease.
func (r *rare) tick(gen uint64) {
	b := r.b
	b.mu.Lock()
	s := b.snap
	if s.Gen != gen || !r.endsLocked(s) {
		b.mu.Unlock()
		return
	}
	r.timer = nil
	b.mu.Unlock()
	var snap store.Snapshot
	b.update(nil, gen, &store.Change{Kind: store.Expire}, &snap)
	if snap.Gen == gen && snap.State == HalfOpen && snap.Claimed == 0 {
		// The store holds no slot of this lease, yet this process still
		// does: slots it granted on local state while the store was away
		// (the store never heard of them, and its answer, no newer than
		// what this process saw, changes nothing here). Their lease is
		// over on this process's clock: end it here, as a failed trial;
		// the new state is pushed to the store as after any outage.
		// A record announced since may have replaced the local slot count
		// (Claimed 0): the leases held here say so too. The same if the
		// store did not answer: the local state, with no slot counted,
		// did not end the lease.
		b.mu.Lock()
		local := b.snap.Gen == gen && b.snap.State == HalfOpen && r.endsLocked(b.snap)
		b.mu.Unlock()
		if local {
			b.applyLocal(gen, b.f.clock.Now(), &store.Change{Kind: store.Failure}, nil)
		}
	}
	// A store may keep the circuit as it is for longer (its clock is
	// behind ours, or it failed): look again later rather than never.
	b.mu.Lock()
	if b.snap.Gen == gen && r.timer == nil && r.endsLocked(b.snap) {
		d := r.endLocked(b.snap).Sub(b.f.clock.Now())
		if d <= 0 {
			d = retryStep(b.cfg.TTL)
		}
		r.armAfterLocked(gen, d)
	}
	b.mu.Unlock()
}

// retryStep is how long a breaker waits before it asks its store again to
// end an open period or lease that the store kept.
func retryStep(ttl time.Duration) time.Duration {
	return min(max(ttl/10, time.Millisecond), time.Second)
}

func roundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// refreshOpenErr gives the open error a RetryAfter computed now. The
// factory's refresher marks it stale again a refreshEvery later (staleBit
// in the view), so a busy open circuit reads the clock and allocates once
// per refreshEvery and an idle one costs nothing.
func (r *rare) refreshOpenErr() *OpenError {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.openErr.Load()
	if !r.stale || b.snap.State != Open {
		return e
	}
	e = &OpenError{Circuit: b.name, RetryAfter: roundUp(b.snap.Until.Sub(b.f.clock.Now()))}
	b.openErr.Store(e)
	r.stale = false
	b.view.Store(b.viewOf(&b.snap))
	b.f.stale(b)
	return e
}

// markStale asks the next rejection to refresh RetryAfter.
func (r *rare) markStale() {
	b := r.b
	b.mu.Lock()
	if b.snap.State == Open {
		r.stale = true
		b.view.Store(b.viewOf(&b.snap))
	}
	b.mu.Unlock()
}
