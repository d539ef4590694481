package runtime

// This file: a group's eviction of idle circuits: the sweep, and the
// least recently used closed circuit evicted past MaxKeys.

// evictable reports whether b may be evicted: closed, no failures pending.
func evictable(b *Breaker) bool {
	w := b.view.Load()
	return word(w).state() == Closed && w&pendingBit == 0
}

// evictOneLocked evicts one evictable circuit that no call reached since
// the last sweep, and returns it (its events are to be delivered once
// g.mu is released), or nil. g.mu is held.
func (g *Group) evictOneLocked() (victim *Breaker) {
	g.keys.Range(func(k, v any) bool {
		e := v.(*groupEntry)
		if e.used.Load() || !evictable(e.b) || g.pending[k.(string)] > 0 {
			return true
		}
		g.dropLocked(k.(string), e)
		victim = e.b
		return false
	})
	return victim
}

// dropLocked removes e from the group and, if the factory still has it,
// from the factory, queueing its EventRemoved. g.mu is held.
func (g *Group) dropLocked(key string, e *groupEntry) {
	g.deleteLocked(key, e)
	if g.f.breakers.CompareAndDelete(e.b.name, e.b) {
		b := e.b
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

// sweep evicts the circuits idle for an idle timeout: unused at two sweeps
// in a row after the one that saw them used.
func (g *Group) sweep() {
	var victims []*Breaker
	g.mu.Lock()
	g.stop = nil
	if g.f.closed.Load() {
		g.mu.Unlock()
		return // Factory.Close stops the sweep: breakers keep working as they are
	}
	changed := false
	g.keys.Range(func(k, v any) bool {
		e := v.(*groupEntry)
		switch {
		case e.b.flags.has(flagDetached):
			g.deleteLocked(k.(string), e) // removed from the factory by somebody else
			changed = true
		case e.used.Load():
			e.used.Store(false)
			e.idle = 0
		default:
			if e.idle < 2 {
				e.idle++
			}
			if e.idle >= 2 && evictable(e.b) && g.pending[k.(string)] == 0 {
				g.dropLocked(k.(string), e)
				victims = append(victims, e.b)
				changed = true
			}
		}
		return true
	})
	if changed || g.unread > 0 {
		g.rebuildLocked() // drops the gone entries, takes the new keys
	}
	g.full.Store(false) // entries unused since this sweep may make room now
	if g.n > 0 {
		g.armLocked()
	}
	g.mu.Unlock()
	for _, b := range victims {
		b.drain()
	}
}
