package runtime

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// Review stress: lookups of special keys ("", "~", "~empty", '/' keys,
// hashed ones) under a group whose name holds '/', while the table grows,
// shrinks (sweeps), loses keys to Factory.Remove and to evictions past
// MaxKeys: every lookup gets its key's circuit or the overflow circuit,
// and at rest the group holds each key once, at most MaxKeys of them.
func TestGroupTableStress(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := NewFactory(WithClock(clk))
	const maxKeys = 40
	g := f.Group("x/y", Config{}, WithMaxKeys(maxKeys), WithIdleTimeout(time.Second))
	keys := []string{"", "~", "~~", "~empty", "~overflow", "~~empty", "a/b", "/", "//", "y/z", strings.Repeat("h", MaxKeyLen+1), "nl\n", "\xff"}
	for i := range 80 {
		keys = append(keys, "k"+strconv.Itoa(i))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := keys[(i*7+w*13)%len(keys)]
				b := g.Breaker(k)
				if n := b.Name(); n != circuitName(g.name, k) && n != "x/y/~overflow" {
					t.Errorf("key %.20q got %q", k, n)
					stop.Store(true)
					return
				}
				if i%97 == 0 {
					f.Remove(circuitName(g.name, keys[(i/97)%len(keys)]))
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			clk.Advance(250 * time.Millisecond)
			g.mu.Lock()
			if g.n+g.inflight > maxKeys || g.n > maxKeys {
				t.Errorf("n %d inflight %d > %d", g.n, g.inflight, maxKeys)
			}
			g.mu.Unlock()
		}
		stop.Store(true)
	}()
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[string]bool{}
	g.eachLocked(func(k string, b *Breaker) bool {
		if seen[k] {
			t.Errorf("key %.20q twice", k)
		}
		seen[k] = true
		if b.name != circuitName(g.name, k) {
			t.Errorf("key %.20q holds %q", k, b.name)
		}
		return true
	})
	if len(seen) != g.n || g.n > maxKeys || g.inflight != 0 {
		t.Errorf("held %d, n %d, inflight %d", len(seen), g.n, g.inflight)
	}
}

// Review stress: goroutines making the same 3000 keys in different orders
// while the table grows many times: each key has one circuit, the one
// every goroutine got, and the table finds it.
func TestGroupGrowthOneCircuitPerKey(t *testing.T) {
	f := NewFactory()
	g := f.Group("a/b", Config{}, WithMaxKeys(10_000))
	const n = 3000
	key := func(i int) string {
		switch i % 5 {
		case 0:
			return "~" + strconv.Itoa(i)
		case 1:
			return "x/" + strconv.Itoa(i)
		}
		return strconv.Itoa(i)
	}
	got := make([][]*Breaker, 4)
	var wg sync.WaitGroup
	for w := range got {
		got[w] = make([]*Breaker, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				i := (j*[]int{1, 7, 11, 13}[w] + w*977) % n
				b := g.Breaker(key(i))
				if b.name != circuitName(g.name, key(i)) {
					t.Errorf("key %q got %q", key(i), b.name)
				}
				got[w][i] = b
				// look up an earlier key again: it must be found as is
				if k := (i * 31) % n; got[w][k] != nil && g.Breaker(key(k)) != got[w][k] {
					t.Errorf("key %q: another circuit", key(k))
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		for w := range got {
			if got[w][i] != got[0][i] {
				t.Fatalf("key %q: two circuits", key(i))
			}
		}
	}
	if g.Len() != n {
		t.Errorf("Len %d", g.Len())
	}
}
