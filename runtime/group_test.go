package runtime_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errGroupDown = errors.New("down")

// tripKey fails calls on b until it opens.
func tripKey(t *testing.T, b *purgatory.Breaker) {
	t.Helper()
	for range 10 {
		if b.State() == purgatory.Open {
			return
		}
		_ = b.Do(context.Background(), func(context.Context) error { return errGroupDown })
	}
	require.Equal(t, purgatory.Open, b.State(), "circuit %s did not open", b.Name())
}

func TestGroupNamesEveryKey(t *testing.T) {
	f := purgatory.NewFactory()
	g := f.Group("api", purgatory.Config{Threshold: 2})
	assert.Equal(t, "api", g.Name())
	long := strings.Repeat("x", 10<<10)
	for _, c := range []struct{ key, name string }{
		{"example.com", "api/example.com"},
		{"", "api/~empty"},
		{"a/b/c", "api/a/b/c"},
		{"with space", "api/with space"},
		{"{tag}", "api/{tag}"},
		{"}{", "api/}{"},
		{"~x", "api/~~x"},
		{"~empty", "api/~~empty"},
		{"~overflow", "api/~~overflow"},
		{"héllo", "api/héllo"},
		{strings.Repeat("y", purgatory.MaxKeyLen), "api/" + strings.Repeat("y", purgatory.MaxKeyLen)},
		{long, "api/~bf4ae32e1fd1b5c4~" + strings.Repeat("x", 64)},
		{long + "z", "api/~a1b8a61e2c1d2fc1~" + strings.Repeat("x", 64)},
		{"line\nbreak", "api/~8b9b7c7d6a1a3f38~line?break"},
		{"bad\xffutf8", "api/~5d4b1f0c4a7b4a11~bad?utf8"},
	} {
		b := g.Breaker(c.key)
		name := b.Name()
		if strings.HasPrefix(c.name, "api/~") && !strings.HasPrefix(c.name, "api/~~") && len(c.name) > 22 && c.name[21] == '~' {
			// hashed: check the shape, the exact hash is the SHA-256's
			require.Len(t, name, len(c.name), "key %.20q", c.key)
			assert.Equal(t, c.name[:5], name[:5])
			assert.Equal(t, c.name[21:], name[21:], "key %.20q", c.key)
		} else {
			assert.Equal(t, c.name, name, "key %.20q", c.key)
		}
		assert.Same(t, b, g.Breaker(c.key), "key %.20q: same circuit again", c.key)
		assert.Equal(t, "api", b.Group())
		got, ok := f.Lookup(name)
		require.True(t, ok)
		assert.Same(t, b, got)
	}
	assert.NotEqual(t, g.Breaker(long).Name(), g.Breaker(long+"z").Name(), "long keys differing past the kept prefix")
	assert.Equal(t, 15, g.Len())
	assert.Equal(t, "", f.Breaker("plain", purgatory.Config{}).Group())
	assert.Same(t, g, f.Group("api", purgatory.Config{Threshold: 2}))
}

func TestGroupKeysAreIndependent(t *testing.T) {
	f := purgatory.NewFactory()
	g := f.Group("hosts", purgatory.Config{Threshold: 2})
	tripKey(t, g.Breaker("down.example"))
	assert.Equal(t, purgatory.Closed, g.Breaker("up.example").State())
	err := g.Breaker("down.example").Do(context.Background(), func(context.Context) error { return nil })
	var oe *purgatory.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "hosts/down.example", oe.Circuit)
}

func TestGroupLookupAllocatesNothing(t *testing.T) {
	g := purgatory.NewFactory().Group("api", purgatory.Config{})
	long := strings.Repeat("k", 10<<10)
	for _, key := range []string{"example.com", "", long, "~x"} {
		g.Breaker(key)
		assert.Zero(t, testing.AllocsPerRun(100, func() { g.Breaker(key) }), "key %.20q", key)
	}
}

func TestGroupRegistration(t *testing.T) {
	var mu sync.Mutex
	var conflicts []purgatory.Event
	f := purgatory.NewFactory(purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind == purgatory.EventConfigConflict {
			mu.Lock()
			conflicts = append(conflicts, e)
			mu.Unlock()
		}
	})))
	g := f.Group("api", purgatory.Config{Threshold: 3}, purgatory.WithMaxKeys(10))
	assert.Same(t, g, f.Group("api", purgatory.Config{Threshold: 3}, purgatory.WithMaxKeys(10)))
	assert.Empty(t, conflicts)
	assert.Same(t, g, f.Group("api", purgatory.Config{Threshold: 4}, purgatory.WithMaxKeys(10)))
	assert.Same(t, g, f.Group("api", purgatory.Config{Threshold: 3}))
	require.Len(t, conflicts, 2)
	assert.Equal(t, "api", conflicts[0].Circuit)
	assert.Contains(t, conflicts[0].Err.Error(), `group "api" is registered with threshold=3`)
	assert.Contains(t, conflicts[0].Err.Error(), "ignoring threshold=4")
	assert.Contains(t, conflicts[1].Err.Error(), "ignoring threshold=3 ttl=30s trials=1 maxkeys=1000")
	assert.Equal(t, 3, g.Breaker("k").Config().Threshold)
	neutral := purgatory.Is(context.DeadlineExceeded)
	assert.Same(t, g, f.Group("api", purgatory.Config{Threshold: 3, Ignore: []func(error) bool{neutral}}, purgatory.WithMaxKeys(10)))
	require.Len(t, conflicts, 3, "another ignore list is a conflict, like another exclude list")
	assert.Panics(t, func() { f.Group("nil-ignore", purgatory.Config{Ignore: []func(error) bool{nil}}) })

	assert.PanicsWithValue(t, "purgatory: Group: empty name", func() { f.Group("", purgatory.Config{}) })
	assert.Panics(t, func() { f.Group("bad", purgatory.Config{Threshold: -1}) })
	assert.Panics(t, func() { purgatory.WithMaxKeys(0) })
	assert.Panics(t, func() { purgatory.WithIdleTimeout(0) })
}

// An idle circuit goes whatever its state, except open (while its open
// period runs) and isolated; one called now and then stays.
func TestGroupIdleEviction(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	var mu sync.Mutex
	var removed []string
	f := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithTTL(time.Hour),
		purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
			if e.Kind == purgatory.EventRemoved {
				mu.Lock()
				removed = append(removed, e.Circuit)
				mu.Unlock()
			}
		})))
	g := f.Group("h", purgatory.Config{Threshold: 2}, purgatory.WithIdleTimeout(time.Minute))
	idle := g.Breaker("idle")
	busy := g.Breaker("busy")
	open := g.Breaker("open")
	tripKey(t, open) // open for an hour
	pending := g.Breaker("pending")
	_ = pending.Do(context.Background(), func(context.Context) error { return errGroupDown }) // 1 of 2 failures
	half := g.Breaker("half")
	half.OpenFor(30 * time.Second) // half-open at 30 s, then nobody tries it
	iso := g.Breaker("iso")
	iso.Isolate()
	for range 4 {
		clk.Advance(30 * time.Second)
		g.Breaker("busy")
	}
	// Two minutes without a call: idle, pending and half-open are gone;
	// busy, open (for an hour) and isolated stay.
	mu.Lock()
	slices.Sort(removed)
	assert.Equal(t, []string{"h/half", "h/idle", "h/pending"}, removed)
	mu.Unlock()
	_, ok := f.Lookup("h/idle")
	assert.False(t, ok)
	assert.Equal(t, 3, g.Len())
	assert.Same(t, busy, g.Breaker("busy"))
	assert.Same(t, open, g.Breaker("open"))
	assert.Same(t, iso, g.Breaker("iso"))
	fresh := g.Breaker("idle")
	assert.NotSame(t, idle, fresh, "an evicted key gets a new circuit")
	got, ok := f.Lookup("h/idle")
	require.True(t, ok)
	assert.Same(t, fresh, got)
	// Without a store, an evicted circuit's state was its own: the key
	// starts afresh.
	assert.Equal(t, purgatory.Closed, g.Breaker("half").State())
	assert.Equal(t, 0, g.Breaker("pending").Status().Failures)
	assert.Equal(t, purgatory.HalfOpen, half.State(), "the evicted breaker goes on, on its own")
}

// An idle circuit goes between one and one and a half idle timeouts after
// its last call.
func TestGroupIdleEvictionBounds(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	g := f.Group("h", purgatory.Config{}, purgatory.WithIdleTimeout(time.Minute))
	g.Breaker("other") // arms the sweep at t=0
	clk.Advance(10 * time.Second)
	g.Breaker("k") // last call at t=10s
	clk.Advance(60 * time.Second)
	_, ok := f.Lookup("h/k")
	assert.True(t, ok, "kept a whole idle timeout")
	clk.Advance(30 * time.Second) // t=100s
	_, ok = f.Lookup("h/k")
	assert.False(t, ok, "gone within 1.5 idle timeouts")
}

func TestGroupMaxKeys(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithTTL(time.Hour))
	g := f.Group("m", purgatory.Config{Threshold: 1}, purgatory.WithMaxKeys(2), purgatory.WithIdleTimeout(time.Hour))
	a, b := g.Breaker("a"), g.Breaker("b")
	assert.Nil(t, g.Overflow())
	c := g.Breaker("c") // a and b were just used: nothing to evict
	assert.Equal(t, "m/~overflow", c.Name())
	assert.Same(t, c, g.Overflow())
	assert.Same(t, c, g.Breaker("d"), "excess keys share the overflow circuit")
	assert.Zero(t, testing.AllocsPerRun(100, func() { g.Breaker("e") }), "an overflowed key's lookup")
	assert.Equal(t, 2, g.Len())
	assert.Same(t, a, g.Breaker("a"))

	tripKey(t, b)
	clk.Advance(30 * time.Minute) // a sweep: a and b not used since
	g.Breaker("b")                // b open: never evicted
	c2 := g.Breaker("c")          // evicts a, the closed one unused since the sweep
	assert.Equal(t, "m/c", c2.Name())
	_, ok := f.Lookup("m/a")
	assert.False(t, ok)
	assert.Same(t, b, g.Breaker("b"))
	assert.Equal(t, 2, g.Len())
	assert.Equal(t, "m/~overflow", g.Breaker("a").Name(), "b open, c just used: a overflows now")
}

func TestGroupFollowsFactoryRemove(t *testing.T) {
	f := purgatory.NewFactory()
	g := f.Group("r", purgatory.Config{})
	b := g.Breaker("k")
	require.True(t, f.Remove("r/k"))
	b2 := g.Breaker("k")
	assert.NotSame(t, b, b2)
	got, ok := f.Lookup("r/k")
	require.True(t, ok)
	assert.Same(t, b2, got)
	assert.Equal(t, 1, g.Len())
}

// Listeners may call the group back from the created and removed events
// of its circuits.
func TestGroupListenerCallsBack(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	var g *purgatory.Group
	var mu sync.Mutex
	var seen []string
	f := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind != purgatory.EventCreated && e.Kind != purgatory.EventRemoved {
			return
		}
		b := g.Breaker(strings.TrimPrefix(e.Circuit, "cb/"))
		mu.Lock()
		seen = append(seen, e.Kind.String()+" "+b.Name())
		mu.Unlock()
		_ = g.Len()
	})))
	g = f.Group("cb", purgatory.Config{}, purgatory.WithIdleTimeout(time.Minute))
	g.Breaker("k")
	clk.Advance(2 * time.Minute)
	mu.Lock()
	defer mu.Unlock()
	// The removed event's listener made the key anew: its created event
	// came (from the nested call) before the outer listener's record.
	assert.Equal(t, []string{"created cb/k", "created cb/k", "removed cb/k"}, seen)
}

func TestGroupConcurrentCreation(t *testing.T) {
	f := purgatory.NewFactory()
	g := f.Group("c", purgatory.Config{}, purgatory.WithMaxKeys(8))
	var wg sync.WaitGroup
	got := make([][]*purgatory.Breaker, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 16 {
				got[i] = append(got[i], g.Breaker(string(rune('a'+k))))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 8, g.Len())
	for k := range 16 {
		for i := range got {
			assert.Same(t, got[0][k], got[i][k], "key %d", k)
		}
	}
}

func BenchmarkGroup(b *testing.B) {
	ctx := context.Background()
	var svc service = &okService{}
	f := purgatory.NewFactory()
	b.Run("StaticClosedSuccess", func(b *testing.B) {
		br := f.Breaker("static", purgatory.Config{})
		b.ReportAllocs()
		for b.Loop() {
			_ = guarded(ctx, br, svc)
		}
	})
	g := f.Group("g", purgatory.Config{}, purgatory.WithMaxKeys(1001))
	for i := range 999 {
		g.Breaker("host" + string(rune('A'+i%26)) + string(rune('A'+i/26)))
	}
	b.Run("Lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = g.Breaker("api.example.com")
		}
	})
	b.Run("LookupParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = g.Breaker("api.example.com")
			}
		})
	})
	b.Run("KeyedClosedSuccess", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = guarded(ctx, g.Breaker("api.example.com"), svc)
		}
	})
	long := strings.Repeat("k", 10<<10)
	g.Breaker(long)
	b.Run("Lookup10KB", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = g.Breaker(long)
		}
	})
}

// After Factory.Close, keys keep their circuits (which work on local
// state) and the sweep stops.
func TestGroupAfterFactoryClose(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	g := f.Group("z", purgatory.Config{}, purgatory.WithIdleTimeout(time.Minute))
	b := g.Breaker("k")
	require.NoError(t, f.Close())
	assert.Same(t, b, g.Breaker("k"))
	assert.Zero(t, testing.AllocsPerRun(100, func() { g.Breaker("k") }))
	clk.Advance(10 * time.Minute)
	assert.Same(t, b, g.Breaker("k"), "no eviction after Close")
	assert.Zero(t, clk.Pending(), "no sweep armed after Close")
}

// Lookups, creations, pressure evictions, sweeps and removals at once:
// every lookup gets its key's circuit or the overflow circuit, and the
// group never holds more than MaxKeys.
func TestGroupConcurrentChurn(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	g := f.Group("s", purgatory.Config{}, purgatory.WithMaxKeys(6), purgatory.WithIdleTimeout(time.Second))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				key := string(rune('a' + (i*7+w*3)%12))
				b := g.Breaker(key)
				if n := b.Name(); n != "s/"+key && n != "s/~overflow" {
					t.Errorf("key %q got %q", key, n)
					return
				}
				if i%50 == 0 {
					f.Remove("s/" + key)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 40 {
			clk.Advance(500 * time.Millisecond)
		}
	}()
	wg.Wait()
	assert.LessOrEqual(t, g.Len(), 6)
	g.Range(func(key string, b *purgatory.Breaker) bool {
		got, ok := f.Lookup(b.Name())
		assert.True(t, ok && got == b, "key %q: the factory holds the group's circuit", key)
		return true
	})
}
