package runtime

// This file: making a group's circuits, and keeping the group's count of
// them in step with its table (see maxkeys).

// create handles a key without a usable circuit. The factory's Breaker
// and Remove deliver events, and listeners may call back into the group,
// so they run outside g.mu: creation reserves a place under the lock,
// makes the circuit, then publishes it (the factory makes one circuit per
// name, so two racing creators get the same).
func (g *Group) create(key string) *Breaker {
	var victims []*Breaker
	defer func() {
		for _, b := range victims {
			b.drain()
		}
	}()
	g.mu.Lock()
	if b := g.held(key); b != nil {
		if !b.flags.has(flagDetached) || g.f.closed.Load() {
			g.mu.Unlock()
			return b
		}
		g.deleteLocked(key) // removed from the factory by somebody else
	}
	if g.pending[key] == 0 && g.n+g.inflight >= g.gc.maxKeys {
		if b := g.evictOneLocked(); b != nil {
			victims = append(victims, b)
		} else {
			g.full.Store(true)
			g.mu.Unlock()
			return g.overflowBreaker()
		}
	}
	if g.pending == nil {
		g.pending = make(map[string]int)
	}
	was := g.inflightLocked(key)
	g.pending[key]++
	g.recountLocked(key, was) // counted once per key, however many callers race to make it
	g.armLocked()
	g.mu.Unlock()

	b := g.f.breaker(circuitName(g.name, key), g.cfg, g.name)

	g.mu.Lock()
	defer g.mu.Unlock()
	was = g.inflightLocked(key)
	if g.pending[key]--; g.pending[key] == 0 {
		delete(g.pending, key)
	}
	if found := g.held(key); found != nil {
		g.recountLocked(key, was)
		return found // another caller published it first
	}
	b.flags.v.And(^uint32(idleMask))
	b.flags.v.Or(flagUsed)
	g.storeLocked(key, b)
	g.n++
	g.recountLocked(key, was)
	return b
}

// inflightLocked reports whether key is being made and not held: such a
// key holds a place against maxKeys until it is published or given up.
// g.mu is held.
func (g *Group) inflightLocked(key string) bool {
	return g.pending[key] > 0 && g.held(key) == nil
}

// recountLocked updates g.inflight after a change of key's pending count
// or entry; was is what inflightLocked said before it. Counting a key's
// place by what is true of it now, not by who reserved it, keeps n +
// inflight exact when a key is removed and made again while other callers
// are still making it. g.mu is held.
func (g *Group) recountLocked(key string, was bool) {
	switch now := g.inflightLocked(key); {
	case was && !now:
		g.inflight--
	case !was && now:
		g.inflight++
	}
}

// deleteLocked takes key, which the group holds, out of the group. g.mu
// is held.
func (g *Group) deleteLocked(key string) {
	was := g.inflightLocked(key)
	g.removeLocked(key)
	g.n--
	g.recountLocked(key, was)
}

func (g *Group) overflowBreaker() *Breaker {
	if o := g.overflow.Load(); o != nil {
		return o
	}
	o := g.f.breaker(g.name+"/"+overflowKey, g.cfg, g.name)
	g.overflow.CompareAndSwap(nil, o)
	return g.overflow.Load()
}
