package runtime

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A group's keys, hashed ones and others mixed (the empty key, '~' keys), made, removed from the
// factory and made again, evicted by sweeps: after each step the group
// holds each key once, in the table if its name is not hashed and in
// hashed if it is, the table's tags and counts are exact and it is at most seven
// eighths filled; it shrinks, and goes, as the keys go.
func TestGroupTableHoldsExactly(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := NewFactory(WithClock(clk))
	g := f.Group("t", Config{}, WithMaxKeys(10_000), WithIdleTimeout(time.Minute))
	keyOf := func(i int) string {
		switch i % 10 {
		case 0:
			return "~" + strconv.Itoa(i)
		case 1:
			return strings.Repeat("x", MaxKeyLen) + strconv.Itoa(i) // hashed
		case 2:
			return "line\n" + strconv.Itoa(i) // hashed
		case 3:
			if i == 3 {
				return ""
			}
		}
		return strconv.Itoa(i)
	}
	held := map[string]*Breaker{}
	check := func(step string) {
		t.Helper()
		g.mu.Lock()
		defer g.mu.Unlock()
		seen := map[string]bool{}
		g.eachLocked(func(k string, b *Breaker) bool {
			assert.False(t, seen[k], "%s: key %.20q twice", step, k)
			seen[k] = true
			assert.Same(t, held[k], b, "%s: key %.20q", step, k)
			return true
		})
		assert.Len(t, seen, len(held), step)
		assert.Equal(t, len(held), g.n, step)
		assert.Zero(t, g.inflight, step)
		inTable := 0
		for k, b := range held {
			if tabled(k) {
				inTable++
				_, got := g.table.Load().find(k, len(g.name)+1)
				assert.Same(t, b, got, "%s: key %q in the table", step, k)
			} else {
				v, ok := g.hashed.Load(k)
				assert.True(t, ok && v.(*Breaker) == b, "%s: key %.20q in hashed", step, k)
			}
		}
		tb := g.table.Load()
		if inTable == 0 {
			assert.True(t, tb == nil, "%s: no table without keys", step)
			return
		}
		require.NotNil(t, tb, step)
		live, filled := 0, 0
		for j := range len(tb.groups) * 8 {
			grp := &tb.groups[j/8]
			b, tag := grp.slots[j%8].Load(), grp.tags.Load()>>(j%8*8)&0xff
			if b != nil {
				live++
				_, want := tb.hash(keyOfName(b.name[len(g.name)+1:]))
				assert.Equal(t, want, tag, "%s: slot %d's tag", step, j)
			} else {
				assert.Contains(t, []uint64{tagEmpty, tagDeleted}, tag, "%s: slot %d's tag", step, j)
			}
			if tag != tagEmpty {
				filled++
			}
		}
		assert.Equal(t, inTable, live, step)
		assert.Equal(t, live, tb.live, step)
		assert.Equal(t, filled, tb.filled, step)
		assert.LessOrEqual(t, tb.filled*8, len(tb.groups)*8*7, step)
	}
	use := func(from, to int) {
		for i := from; i < to; i++ {
			k := keyOf(i)
			b := g.Breaker(k)
			if old, ok := held[k]; ok {
				require.Same(t, old, b, "key %.20q", k)
			}
			held[k] = b
		}
	}

	use(0, 1000)
	check("made")
	for i := 0; i < 1000; i += 3 {
		require.True(t, f.Remove(held[keyOf(i)].Name()))
		delete(held, keyOf(i)) // a new circuit on the next lookup
	}
	use(0, 1000)
	check("made again after Factory.Remove")
	groups := len(g.table.Load().groups)
	for range 3 {
		use(0, 100)
		clk.Advance(30 * time.Second) // a sweep
	}
	for i := 100; i < 1000; i++ {
		delete(held, keyOf(i))
	}
	check("evicted but 100")
	assert.Less(t, len(g.table.Load().groups), groups, "the table shrank")
	clk.Advance(90 * time.Second)
	held = map[string]*Breaker{}
	check("evicted all")
	use(0, 1000)
	check("made after eviction")
}

// TestGroupClaimRacesLookup: the sweep evicts a circuit only by claiming
// it (flagUsed clear, flagDetached set in one compare-and-swap), so a
// lookup that marked it used first keeps it, and a lookup after the claim
// gets a new circuit, never the one being evicted.
func TestGroupClaimRacesLookup(t *testing.T) {
	f := NewFactory()
	g := f.Group("g", Config{})
	b1 := g.Breaker("a")
	unuse := func() { b1.flags.v.And(^uint32(flagUsed | idleMask)) } // as a sweep does
	unuse()
	if g.Breaker("a") != b1 { // marks it used again
		t.Fatal("lookup of a kept key gave another circuit")
	}
	g.mu.Lock()
	claimed := b1.flags.claim()
	g.mu.Unlock()
	if claimed {
		t.Fatal("the sweep claimed a circuit a lookup had marked used")
	}
	unuse()
	g.mu.Lock()
	if !b1.flags.claim() {
		g.mu.Unlock()
		t.Fatal("the sweep could not claim an unused circuit")
	}
	g.dropLocked("a", b1)
	g.mu.Unlock()
	if b2 := g.Breaker("a"); b2 == b1 {
		t.Fatal("a lookup after the claim got the evicted circuit")
	}
}
