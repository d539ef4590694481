package runtime

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// This file: where a group keeps its circuits, at the cost of a slot per
// key rather than a map entry (see BenchmarkIdleClosedCircuit/group).
//
// A key whose circuit is named name+"/"+key (verbatim: see circuitName),
// which is nearly every key, is in the group's keyTable, found by the
// circuit's name: the group keeps neither the key nor an entry of its own
// (what its sweep needs to know of a circuit is in the circuit's flags:
// flagUsed, flagIdle). The other keys (the empty key, keys beginning with
// '~', hashed keys) are in a sync.Map, odd.

// keyTable is an open-addressing table, with linear probing, of circuits
// named after their key. Lookups read it without a lock. Writers hold g.mu
// and only ever store a circuit into a nil slot or a tombstone, or a
// tombstone over a circuit, so that the probe sequence of a key present
// stays unbroken under a reader; growing or shrinking makes a new table,
// and the old one, which readers may still hold, is not written again.
// At most three quarters of the slots are filled (circuits and
// tombstones): a probe meets a nil slot soon.
type keyTable struct {
	seed   maphash.Seed
	slots  []atomic.Pointer[Breaker]
	live   int // slots holding a circuit (g.mu)
	filled int // slots not nil: circuits and tombstones (g.mu)
}

// tombstone fills the slot of a circuit that left the group: probes go
// past it, and an insertion may take it.
var tombstone = new(Breaker)

// minSlots is the smallest table.
const minSlots = 8

// home returns the slot where key's probe sequence starts.
func (t *keyTable) home(key string) uint64 {
	hi, _ := bits.Mul64(maphash.String(t.seed, key), uint64(len(t.slots)))
	return hi
}

// find returns key's slot and circuit, or -1 and nil; skip is the length
// of the group's name and "/". It takes no lock and allocates nothing.
func (t *keyTable) find(key string, skip int) (int, *Breaker) {
	n := uint64(len(t.slots))
	for i := t.home(key); ; {
		b := t.slots[i].Load()
		if b == nil {
			return -1, nil
		}
		if b != tombstone && b.name[skip:] == key {
			return int(i), b
		}
		if i++; i == n {
			i = 0
		}
	}
}

// put stores b, key's circuit, in t, which has room for it and does not
// hold key. g.mu is held (or t is not published yet).
func (t *keyTable) put(key string, b *Breaker) {
	n := uint64(len(t.slots))
	i := t.home(key)
	for {
		s := t.slots[i].Load()
		if s == nil {
			t.filled++
			break
		}
		if s == tombstone {
			break
		}
		if i++; i == n {
			i = 0
		}
	}
	t.live++
	t.slots[i].Store(b)
}

// findLocked returns key's circuit, or nil. g.mu is held.
func (g *Group) findLocked(key string) *Breaker {
	if t := g.table.Load(); t != nil && len(key) <= MaxKeyLen {
		if _, b := t.find(key, len(g.name)+1); b != nil {
			return b
		}
	}
	if v, ok := g.odd.Load(key); ok {
		return v.(*Breaker)
	}
	return nil
}

// storeLocked stores b as key's circuit; the group does not hold key.
// g.mu is held.
func (g *Group) storeLocked(key string, b *Breaker) {
	if !verbatim(key) {
		g.odd.Store(key, b)
		return
	}
	t := g.table.Load()
	if t == nil || (t.filled+1)*4 > len(t.slots)*3 {
		live := 0
		if t != nil {
			live = t.live
		}
		t = g.resizeLocked(live + 1)
	}
	t.put(key, b)
}

// removeLocked takes key out of the group. g.mu is held.
func (g *Group) removeLocked(key string) {
	if t := g.table.Load(); t != nil && len(key) <= MaxKeyLen {
		if i, _ := t.find(key, len(g.name)+1); i >= 0 {
			t.slots[i].Store(tombstone)
			t.live--
			return
		}
	}
	g.odd.Delete(key)
}

// resizeLocked publishes a new table, half full once it holds room
// circuits, with the circuits of the current one, and returns it; for
// room 0, no table. O(circuits held), at most once per circuits/2
// insertions, and at sweeps that leave the table mostly empty. g.mu is
// held.
func (g *Group) resizeLocked(room int) *keyTable {
	old := g.table.Load()
	if room == 0 {
		g.table.Store(nil)
		return nil
	}
	t := &keyTable{slots: make([]atomic.Pointer[Breaker], max(minSlots, 2*room))}
	if old != nil {
		t.seed = old.seed
		skip := len(g.name) + 1
		for i := range old.slots {
			if b := old.slots[i].Load(); b != nil && b != tombstone {
				t.put(b.name[skip:], b)
			}
		}
	} else {
		t.seed = maphash.MakeSeed()
	}
	g.table.Store(t)
	return t
}

// shrinkLocked makes the table smaller if at most an eighth of it holds
// circuits. g.mu is held.
func (g *Group) shrinkLocked() {
	if t := g.table.Load(); t != nil && (t.live == 0 || len(t.slots) > minSlots && t.live*8 <= len(t.slots)) {
		g.resizeLocked(t.live)
	}
}

// eachLocked calls fn for each key of the group and its circuit until fn
// returns false. fn may remove the key it is given (removeLocked) but
// store none. g.mu is held.
func (g *Group) eachLocked(fn func(key string, b *Breaker) bool) {
	if t := g.table.Load(); t != nil {
		skip := len(g.name) + 1
		for i := range t.slots {
			if b := t.slots[i].Load(); b != nil && b != tombstone {
				if !fn(b.name[skip:], b) {
					return
				}
			}
		}
	}
	g.odd.Range(func(k, v any) bool { return fn(k.(string), v.(*Breaker)) })
}
