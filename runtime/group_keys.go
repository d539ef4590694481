package runtime

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// This file: where a group keeps its circuits, at the cost of a slot per
// key rather than a map entry (see BenchmarkIdleClosedCircuit/group).
//
// A key whose circuit name is not hashed (see circuitName), which is
// nearly every key, is in the group's keyTable, found by the circuit's
// name, which gives the key back (keyOfName): the group keeps neither the
// key nor an entry of its own (what its sweep needs to know of a circuit
// is in the circuit's flags: flagUsed, flagIdle). Hashed keys, which their
// names do not give back, are in a sync.Map, hashed.

// keyTable is an open-addressing hash table of circuits whose names give
// their key back, in groups of eight slots, each slot with a tag byte (as
// Go's maps are): empty, deleted, or seven bits of the key's hash. A lookup
// reads a group's eight tags in one word and compares the names of the
// circuits whose tag matches only, and stops at the first group with an
// empty slot. Lookups take no lock. Writers hold g.mu; a circuit is
// stored before its tag says so, and a tag only ever goes from empty to
// a circuit's and then between deleted and a circuit's, so that the probe
// sequence of a key present stays unbroken under a reader; growing or
// shrinking makes a new table, and the old one, which readers may still
// hold, is not written again. At most seven eighths of the slots are
// filled (circuits and deleted ones): probes meet an empty slot soon.
type keyTable struct {
	seed   maphash.Seed
	groups []slotGroup
	live   int // slots holding a circuit (g.mu)
	filled int // slots not empty: circuits and deleted ones (g.mu)
}

// slotGroup is eight slots and their tags, side by side: 9 bytes a slot.
// Slot j of a table is slot j%8 of group j/8.
type slotGroup struct {
	tags  atomic.Uint64              // a byte a slot
	slots [8]atomic.Pointer[Breaker] // a circuit, or nil
}

// Tags, and the arithmetic on eight of them at once.
const (
	tagEmpty   = 0x00
	tagDeleted = 0x01
	tagLive    = 0x80 // | seven bits of the hash
	lsbs       = 0x0101010101010101
	msbs       = 0x8080808080808080
)

// hash returns key's hash, its first group and its tag.
func (t *keyTable) hash(key string) (group, tag uint64) {
	h := maphash.String(t.seed, key)
	group, _ = bits.Mul64(h, uint64(len(t.groups)))
	return group, tagLive | h&0x7f
}

// find returns key's slot and circuit, or -1 and nil; skip is the length
// of the group's name and "/". It takes no lock and allocates nothing.
func (t *keyTable) find(key string, skip int) (int, *Breaker) {
	h := maphash.String(t.seed, key) // t.hash, by hand: one call less on the fast path
	gs := t.groups
	i, _ := bits.Mul64(h, uint64(len(gs)))
	tag := lsbs * (tagLive | h&0x7f)
	for {
		grp := &gs[i]
		w := grp.tags.Load()
		x := w ^ tag
		for m := (x - lsbs) &^ x & msbs; m != 0; m &= m - 1 { // the bytes equal to tag, and maybe a few more
			k := bits.TrailingZeros64(m) / 8
			if b := grp.slots[k&7].Load(); b != nil && keyOfName(b.name[skip:]) == key {
				return int(i)*8 + k, b
			}
		}
		if (w-lsbs)&^w&msbs != 0 {
			return -1, nil // an empty slot: key would be in this group or an earlier one
		}
		if i++; i == uint64(len(gs)) {
			i = 0
		}
	}
}

// put stores b, key's circuit, in t, which has room for it and does not
// hold key. g.mu is held (or t is not published yet).
func (t *keyTable) put(key string, b *Breaker) {
	i, tag := t.hash(key)
	for {
		grp := &t.groups[i]
		w := grp.tags.Load()
		if free := ^w & msbs; free != 0 { // empty or deleted
			shift := uint(bits.TrailingZeros64(free)) - 7
			if w>>shift&0xff == tagEmpty {
				t.filled++
			}
			t.live++
			grp.slots[shift/8].Store(b)
			grp.tags.Store(w&^(0xff<<shift) | tag<<shift)
			return
		}
		if i++; i == uint64(len(t.groups)) {
			i = 0
		}
	}
}

// delete empties slot j. g.mu is held.
func (t *keyTable) delete(j int) {
	grp, shift := &t.groups[j/8], uint(j%8)*8
	w := grp.tags.Load()
	grp.tags.Store(w&^(0xff<<shift) | tagDeleted<<shift)
	grp.slots[j%8].Store(nil)
	t.live--
}

// held returns key's circuit, or nil. It takes no lock (writers hold
// g.mu).
func (g *Group) held(key string) *Breaker {
	if t := g.table.Load(); t != nil && len(key) <= MaxKeyLen {
		if _, b := t.find(key, len(g.name)+1); b != nil {
			return b
		}
	}
	if v, ok := g.hashed.Load(key); ok {
		return v.(*Breaker)
	}
	return nil
}

// storeLocked stores b as key's circuit; the group does not hold key.
// g.mu is held.
func (g *Group) storeLocked(key string, b *Breaker) {
	if !tabled(key) {
		g.hashed.Store(key, b)
		return
	}
	t := g.table.Load()
	if t == nil || (t.filled+1)*8 > len(t.groups)*8*7 {
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
		if j, _ := t.find(key, len(g.name)+1); j >= 0 {
			t.delete(j)
			return
		}
	}
	g.hashed.Delete(key)
}

// resizeLocked publishes a new table, about five eighths full once it
// holds room circuits, with the circuits of the current one, and returns
// it; for room 0, no table. O(circuits held), at most once per
// circuits/4 insertions, and at sweeps that leave the table mostly empty.
// g.mu is held.
func (g *Group) resizeLocked(room int) *keyTable {
	old := g.table.Load()
	if room == 0 {
		g.table.Store(nil)
		return nil
	}
	t := &keyTable{groups: make([]slotGroup, (room*8/5+7)/8)}
	if old != nil {
		t.seed = old.seed
		skip := len(g.name) + 1
		for i := range old.groups {
			for k := range old.groups[i].slots {
				if b := old.groups[i].slots[k].Load(); b != nil {
					t.put(keyOfName(b.name[skip:]), b)
				}
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
	if t := g.table.Load(); t != nil && (t.live == 0 || len(t.groups) > 1 && t.live <= len(t.groups)) {
		g.resizeLocked(t.live)
	}
}

// eachLocked calls fn for each key of the group and its circuit until fn
// returns false. fn may remove the key it is given (removeLocked) but
// store none. g.mu is held.
func (g *Group) eachLocked(fn func(key string, b *Breaker) bool) {
	if t := g.table.Load(); t != nil {
		skip := len(g.name) + 1
		for i := range t.groups {
			for k := range t.groups[i].slots {
				if b := t.groups[i].slots[k].Load(); b != nil {
					if !fn(keyOfName(b.name[skip:]), b) {
						return
					}
				}
			}
		}
	}
	g.hashed.Range(func(k, v any) bool { return fn(k.(string), v.(*Breaker)) })
}
