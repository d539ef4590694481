package runtime

// This file: a group's eviction of idle circuits: the sweep, and the
// circuit evicted past MaxKeys.
//
// The rule (see Group): a circuit no lookup reached for a whole idle
// timeout leaves the group as soon as it is at rest, whatever its state
// but open or isolated; past MaxKeys, a closed circuit with no failures
// pending and at rest goes after a single sweep interval unused. A circuit
// is never evicted while it protects (open: its open period runs; it moves
// to half-open by itself at the end of it) or on an operator's word
// (isolated), nor while this process holds one of its trial leases or has
// something on its way to the store.

// atRest reports whether b may be evicted now as far as its own state
// goes: it is closed or half-open, this process holds none of its trial
// leases, and nothing of it is on its way to the store (local transitions
// to reconcile after an outage, queued results, rate counts to merge).
// clean is whether it is closed with no failures pending: evicting it
// loses nothing at all. The one place the group reads a breaker's replica:
// it takes b.mu and the push queue's lock (g.mu may be held: the group
// takes them after its own).
func (rep *replica) atRest() (ok, clean bool) {
	b := rep.b
	b.mu.Lock()
	r := b.peek()
	s, leases, diverged := b.snap.State, r.leases.n(), r.diverged
	failures := b.snap.Failures
	b.mu.Unlock()
	switch {
	case s == Open || s == Isolated, leases > 0, diverged, b.rate != nil && b.rate.flushing.Load():
		return false, false
	}
	if b.link != nil && b.link.queued() {
		return false, false
	}
	return true, s == Closed && failures == 0
}

// cleanClosed reports, from the view word alone, whether b is closed with
// no failures pending: the cheap first test of an eviction past MaxKeys.
func cleanClosed(b *Breaker) bool {
	w := b.view.Load()
	return word(w).state() == Closed && w&pendingBit == 0
}

// evictOneLocked evicts one circuit that no call reached since the last
// sweep and returns it (its events are to be delivered once g.mu is
// released), or nil: a closed one with no failures pending, or one idle
// for a whole idle timeout that came to rest since the sweep. g.mu is
// held.
func (g *Group) evictOneLocked() (victim *Breaker) {
	g.eachLocked(func(key string, b *Breaker) bool {
		fl := b.flags.v.Load()
		idle := idleOf(fl)
		if fl&flagUsed != 0 || g.pending[key] > 0 || idle < 2 && !cleanClosed(b) {
			return true
		}
		if ok, clean := b.atRest(); !ok || idle < 2 && !clean || !b.flags.claim() {
			return true
		}
		g.dropLocked(key, b)
		victim = b
		return false
	})
	return victim
}

// idleOf returns how many sweeps in a row found a circuit unused, from its
// flags.
func idleOf(fl uint32) uint32 { return fl & idleMask / flagIdle }

// dropLocked removes b, key's circuit, from the group and, if the factory
// still has it, from the factory, queueing its EventRemoved. g.mu is held.
func (g *Group) dropLocked(key string, b *Breaker) {
	g.deleteLocked(key)
	if g.f.breakers.CompareAndDelete(b.name, b) {
		b.detach()
		b.mu.Lock()
		b.events.post(Event{Kind: EventRemoved, Circuit: b.name})
		b.mu.Unlock()
	}
}

// armLocked arms the sweep if it is not. g.mu is held.
func (g *Group) armLocked() {
	if g.stop == nil && !g.f.closed.Load() {
		g.stop = g.f.clock.AfterFunc(g.gc.idle/2, g.sweep)
	}
}

// sweep evicts the circuits idle for an idle timeout (unused at two
// sweeps in a row after the one that saw them used) that are at rest; an
// idle circuit not at rest yet (open, a trial lease held, a push queued)
// is looked at again at each sweep, and goes at the first that finds it
// at rest.
func (g *Group) sweep() {
	var victims []*Breaker
	g.mu.Lock()
	g.stop = nil
	if g.f.closed.Load() {
		g.mu.Unlock()
		return // Factory.Close stops the sweep: breakers keep working as they are
	}
	g.eachLocked(func(key string, b *Breaker) bool {
		fl := b.flags.v.Load()
		switch {
		case fl&flagDetached != 0:
			g.deleteLocked(key) // removed from the factory by somebody else
		case fl&flagUsed != 0:
			b.flags.v.And(^uint32(flagUsed | idleMask))
		default:
			idle := idleOf(fl)
			if idle < 2 {
				idle = idleOf(b.flags.v.Add(flagIdle)) // only the sweep writes the count
			}
			if idle < 2 || g.pending[key] > 0 {
				return true
			}
			if ok, _ := b.atRest(); ok && b.flags.claim() {
				g.dropLocked(key, b)
				victims = append(victims, b)
			}
		}
		return true
	})
	g.shrinkLocked()
	g.full.Store(false) // entries unused since this sweep may make room now
	if g.n > 0 {
		g.armLocked()
	}
	g.mu.Unlock()
	for _, b := range victims {
		b.drain()
	}
}
