package runtime_test

import (
	"context"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The eviction of idle circuits that are not closed (finding 108): see
// the rule on Group. The times below avoid the sweep's ticks (every half
// idle timeout), so that no assertion depends on the order of two timers
// due at once.

// A full group does not evict an open circuit to make room, even an idle
// one: the new key shares the overflow circuit. Once the open period is
// over, the idle circuit (half-open, nobody to try it) goes at the next
// sweep, and the new key gets a circuit of its own.
func TestGroupIdleOpenCircuitMakesRoom(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	defer f.Close()
	g := f.Group("g", purgatory.Config{Threshold: 1, TTL: 10 * time.Second}, purgatory.WithMaxKeys(1), purgatory.WithIdleTimeout(time.Second))
	a := g.Breaker("a")
	require.ErrorIs(t, call(a, errBoom), errBoom) // a opens for 10 s; its caller goes away
	clk.Advance(5*time.Second + 250*time.Millisecond)
	assert.Equal(t, "g/~overflow", g.Breaker("b").Name(), "a is open: it keeps its place while its open period runs")
	assert.Same(t, a, g.Breaker("a"))

	clk.Advance(5*time.Second + 500*time.Millisecond) // t=10.75 s: a half-open since 10 s, last looked up at 5.25 s
	_, ok := f.Lookup("g/a")
	assert.False(t, ok, "an idle half-open circuit is evicted")
	assert.Equal(t, 0, g.Len())
	assert.Equal(t, purgatory.HalfOpen, a.State(), "the evicted breaker goes on, on its own")
	b := g.Breaker("b")
	assert.Equal(t, "g/b", b.Name())
	assert.NoError(t, call(b, nil))
	// Without a store, a's state was its own: its key starts afresh once
	// it has a place again.
	clk.Advance(2 * time.Second)
	a2 := g.Breaker("a")
	assert.Equal(t, "g/a", a2.Name())
	assert.Equal(t, purgatory.Closed, a2.State())
}

// A half-open circuit whose trial this process holds is not evicted,
// however long the trial runs (up to its lease); once the trial reports,
// the idle circuit goes at the next sweep, and a second report of the
// trial, on the evicted breaker, changes nothing.
func TestGroupKeepsCircuitWithTrialInFlight(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	defer f.Close()
	g := f.Group("g", purgatory.Config{Threshold: 1, TTL: 10 * time.Second}, purgatory.WithIdleTimeout(time.Second))
	ctx := context.Background()
	a := g.Breaker("a")
	require.ErrorIs(t, call(a, errBoom), errBoom)
	clk.Advance(9*time.Second + 750*time.Millisecond)
	require.Same(t, a, g.Breaker("a")) // a caller comes back while a is open
	clk.Advance(500 * time.Millisecond)
	require.Equal(t, purgatory.HalfOpen, a.State())
	tok, err := a.Allow(ctx) // its trial, at 10.25 s: the circuit is idle from now on
	require.NoError(t, err)
	for range 17 { // to t=18.75 s, within the trial's lease (10.25 s + 10 s)
		clk.Advance(500 * time.Millisecond)
		got, ok := f.Lookup("g/a")
		require.True(t, ok, "evicted at %s with a trial in flight", clk.Now().Sub(time.Unix(0, 0)))
		require.Same(t, a, got)
	}
	a.Done(ctx, tok, nil)
	assert.Equal(t, purgatory.Closed, a.State(), "the trial closed it")
	clk.Advance(500 * time.Millisecond)
	_, ok := f.Lookup("g/a")
	assert.False(t, ok, "idle and at rest: evicted")
	a.Done(ctx, tok, errBoom) // reported twice, after the eviction
	assert.Equal(t, purgatory.Closed, a.State())
	a2 := g.Breaker("a")
	assert.NotSame(t, a, a2)
	assert.Equal(t, purgatory.Closed, a2.State())
}

// A closed call in flight across the eviction of its circuit (closed
// circuits do not count their calls) reports to the evicted breaker: it
// counts there, and reaches neither the store nor the key's new circuit.
func TestGroupDoneAfterEviction(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	mem := store.NewMemory()
	f := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(mem))
	defer f.Close()
	g := f.Group("g", purgatory.Config{Threshold: 1, TTL: 10 * time.Second}, purgatory.WithIdleTimeout(time.Second))
	ctx := context.Background()
	a := g.Breaker("a")
	tok, err := a.Allow(ctx)
	require.NoError(t, err)
	clk.Advance(1750 * time.Millisecond) // a long call: its circuit idle (no lookup) and at rest
	_, ok := f.Lookup("g/a")
	require.False(t, ok, "evicted")
	a.Done(ctx, tok, errBoom)
	assert.Equal(t, purgatory.Open, a.State(), "the evicted breaker counts the failure, on local state")
	a2 := g.Breaker("a")
	assert.NotSame(t, a, a2)
	assert.Equal(t, purgatory.Closed, a2.State(), "the store never heard of it")
	assert.NoError(t, call(a2, nil))
}

// With a shared store, eviction loses nothing but this process's copy:
// the key's next call registers a new circuit, which adopts the record
// (here opened again meanwhile by another process). (A Memory store keeps
// a record while some factory watches it: here the other process.)
func TestGroupEvictedKeyAdoptsStoreRecord(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	mem := store.NewMemory()
	f1 := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(mem))
	defer f1.Close()
	f2 := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(mem))
	defer f2.Close()
	cfg := purgatory.Config{Threshold: 1, TTL: 10 * time.Second}
	g1 := f1.Group("g", cfg, purgatory.WithMaxKeys(1), purgatory.WithIdleTimeout(time.Second))
	g2 := f2.Group("g", cfg, purgatory.WithIdleTimeout(time.Hour))

	a1 := g1.Breaker("a")
	a2 := g2.Breaker("a")
	require.ErrorIs(t, call(a1, errBoom), errBoom) // open in the store until 10 s
	require.Equal(t, purgatory.Open, a2.State())
	clk.Advance(12*time.Second + 250*time.Millisecond)
	_, ok := f1.Lookup("g/a")
	require.False(t, ok, "idle, its open period over: evicted")
	assert.Equal(t, purgatory.HalfOpen, a1.State())
	assert.Equal(t, "g/b", g1.Breaker("b").Name(), "its place is free")

	require.Equal(t, purgatory.HalfOpen, a2.State())
	require.ErrorIs(t, call(a2, errBoom), errBoom) // the other process's trial fails: open again
	require.Equal(t, purgatory.Open, a2.State())
	assert.Equal(t, purgatory.HalfOpen, a1.State(), "the evicted breaker no longer follows the store")

	clk.Advance(2 * time.Second) // b idle: its place frees
	again := g1.Breaker("a")
	require.Equal(t, "g/a", again.Name())
	assert.NotSame(t, a1, again)
	assert.Equal(t, purgatory.Open, again.State(), "re-registered: the store's record, not a fresh circuit")
	assert.ErrorIs(t, call(again, nil), purgatory.ErrOpen)
}

// A circuit whose local transitions wait to be pushed to a store that is
// down is not evicted: once the store answers and has them, it goes.
func TestGroupKeepsCircuitUntilStoreHasIt(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	fs := &failingStore{Memory: store.NewMemory()}
	f := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(fs))
	defer f.Close()
	cfg := purgatory.Config{Threshold: 1, TTL: 2 * time.Second}
	g := f.Group("g", cfg, purgatory.WithIdleTimeout(time.Second))
	a := g.Breaker("a")
	other := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(fs))
	defer other.Close()
	watcher := other.Breaker("g/a", cfg) // another process: keeps the record in the Memory store
	fs.setDown(true)
	require.ErrorIs(t, call(a, errBoom), errBoom) // opens on local state
	require.Equal(t, purgatory.Open, a.State())
	clk.Advance(10*time.Second + 250*time.Millisecond)
	require.Equal(t, purgatory.HalfOpen, a.State(), "half-open on local state")
	require.Equal(t, purgatory.Closed, watcher.State(), "the store has not heard of it")
	got, ok := f.Lookup("g/a")
	require.True(t, ok, "idle, but the store has not heard of its transitions")
	require.Same(t, a, got)

	fs.setDown(false)
	clk.Advance(3 * time.Second) // the retry reconciles; a sweep follows
	assert.Equal(t, purgatory.HalfOpen, watcher.State(), "pushed")
	_, ok = f.Lookup("g/a")
	assert.False(t, ok, "the store has it: evicted")
	again := g.Breaker("a")
	assert.NotSame(t, a, again)
	assert.Equal(t, purgatory.HalfOpen, again.State(), "the pushed state, adopted")
}

// The overflow circuit holds no place: it is never evicted, idle or not,
// open or not, and keys move off it to circuits of their own as places
// free, while it is still open.
func TestGroupOverflowCircuitOutlivesEviction(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	defer f.Close()
	g := f.Group("g", purgatory.Config{Threshold: 1, TTL: 10 * time.Second}, purgatory.WithMaxKeys(1), purgatory.WithIdleTimeout(time.Second))
	a := g.Breaker("a")
	o := g.Breaker("b") // a was just used: b overflows
	require.Equal(t, "g/~overflow", o.Name())
	require.ErrorIs(t, call(o, errBoom), errBoom) // the overflow circuit opens
	require.ErrorIs(t, call(a, errBoom), errBoom) // and so does a
	clk.Advance(11*time.Second + 250*time.Millisecond)
	_, ok := f.Lookup("g/a")
	require.False(t, ok, "a: idle, half-open, evicted")
	got, ok := f.Lookup("g/~overflow")
	require.True(t, ok, "the overflow circuit is not evicted")
	assert.Same(t, o, got)
	assert.Same(t, o, g.Overflow())
	assert.Equal(t, purgatory.HalfOpen, o.State())
	assert.Equal(t, 0, g.Len(), "the overflow circuit holds no place")

	require.ErrorIs(t, call(g.Breaker("c"), errBoom), errBoom) // c takes the place, and opens
	assert.Equal(t, "g/~overflow", g.Breaker("b").Name(), "c holds the place: b overflows")
	clk.Advance(12 * time.Second) // c's open period ends, then it goes
	_, ok = f.Lookup("g/c")
	require.False(t, ok, "c: idle, half-open, evicted")
	require.ErrorIs(t, call(o, errBoom), errBoom) // the overflow circuit's trial fails: open again
	require.Equal(t, purgatory.Open, o.State())
	b := g.Breaker("b")
	assert.Equal(t, "g/b", b.Name(), "b gets a circuit of its own while the overflow circuit is open")
	assert.NoError(t, call(b, nil))
	assert.Same(t, o, g.Overflow())
}

// An idle closed circuit with failures pending goes after a whole idle
// timeout (a host that failed once and went away frees its place), but a
// full group does not evict it early to make room: only a closed circuit
// with nothing pending goes after a single sweep interval.
func TestGroupPendingFailuresEvictedWhenIdle(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	defer f.Close()
	g := f.Group("g", purgatory.Config{Threshold: 3}, purgatory.WithMaxKeys(1), purgatory.WithIdleTimeout(2*time.Second))
	a := g.Breaker("a")
	require.ErrorIs(t, call(a, errBoom), errBoom) // 1 of 3
	clk.Advance(1250 * time.Millisecond)          // one sweep (1 s) since a's lookup
	assert.Equal(t, "g/~overflow", g.Breaker("b").Name(), "failures pending: not evicted early")
	clk.Advance(2 * time.Second) // sweeps at 2 s and 3 s: idle for a whole timeout
	_, ok := f.Lookup("g/a")
	assert.False(t, ok)
	assert.Equal(t, "g/b", g.Breaker("b").Name())
}

// A circuit with a result on its way to a store that blocks (the pusher
// waits for the store's answer) is not evicted: the result would reach
// the store from a breaker no longer in the group. Once the store has
// answered, the idle circuit goes.
func TestGroupKeepsCircuitWhileResultQueued(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	m := store.NewMemory()
	st := &gatedStore{Store: m, gate: make(chan struct{})}
	f := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(st))
	defer f.Close()
	g := f.Group("g", purgatory.Config{Threshold: 2, TTL: time.Hour}, purgatory.WithIdleTimeout(time.Second))
	a := g.Breaker("a")
	require.ErrorIs(t, call(a, errBoom), errBoom) // queued: the store waits
	for range 6 {
		clk.Advance(500 * time.Millisecond)
		got, ok := f.Lookup("g/a")
		require.True(t, ok, "evicted with a failure on its way to the store")
		require.Same(t, a, got)
	}
	close(st.gate)
	// The pusher ends on its own goroutine: sweep until it has.
	require.Eventually(t, func() bool {
		clk.Advance(500 * time.Millisecond)
		_, ok := f.Lookup("g/a")
		return !ok
	}, 10*time.Second, time.Millisecond, "the store answered: the idle circuit goes")
	assert.Equal(t, 1, a.Status().Failures, "the failure reached the store before the eviction")
}
