package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// Manual moves, reconciliation, the order of a record and Watch.

func testForce(t *testing.T, s store.Store) {
	name, snap := register(t, s, "m")
	o, err := s.Force(ctx(t), op(name, 0, t0), store.Open)
	require.NoError(t, err)
	assert.Equal(t, store.Open, o.State)
	assert.Equal(t, snap.Gen+1, o.Gen)
	assert.True(t, o.Until.Equal(t0.Add(set.TTL)))
	c, err := s.Force(ctx(t), op(name, 0, t0), store.Closed)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, c.State)
	assert.Equal(t, o.Gen+1, c.Gen)
	c2, err := s.Force(ctx(t), op(name, 0, t0), store.Closed)
	require.NoError(t, err)
	assert.Equal(t, c.Gen+1, c2.Gen, "forcing starts a new generation even in the same state")
	h := halfOpen(t, s, name, c2.Gen)
	c3, err := s.Force(ctx(t), op(name, 0, t0.Add(set.TTL)), store.Closed)
	require.NoError(t, err)
	assert.Equal(t, h.Gen+1, c3.Gen)
	assert.Zero(t, c3.Succeeded, "closed by hand, not by trials: no recovery")
}

// testIsolate: an isolated circuit stays isolated through failures, trial
// claims and expiries, however much time passes, until it is forced
// closed.
func testIsolate(t *testing.T, s store.Store) {
	name, _ := register(t, s, "iso")
	i, err := s.Force(ctx(t), op(name, 0, t0), store.Isolated)
	require.NoError(t, err)
	assert.Equal(t, store.Isolated, i.State)
	later := t0.Add(24 * time.Hour)
	_, err = s.Failure(ctx(t), op(name, i.Gen, later))
	require.NoError(t, err)
	_, err = s.Success(ctx(t), op(name, i.Gen, later))
	require.NoError(t, err)
	_, err = s.Expire(ctx(t), op(name, i.Gen, later))
	require.NoError(t, err)
	got, ok, err := s.Claim(ctx(t), op(name, i.Gen, later))
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, store.Isolated, got.State, "only Force leaves isolation")
	assert.Equal(t, i.Gen, got.Gen)
	c, err := s.Force(ctx(t), op(name, 0, later), store.Closed)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, c.State)
}

// testReconcile: a state reached while the store was away is pushed when
// the record did not change meanwhile.
func testReconcile(t *testing.T, s store.Store) {
	name, snap := register(t, s, "rec")
	o := open(t, s, name, snap.Gen)
	want := store.Snapshot{State: store.Closed}
	got, err := s.Reconcile(ctx(t), op(name, o.Gen, t0), o.Seq, want)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State, "the operator's close made during the outage is kept")
	assert.Equal(t, o.Gen+1, got.Gen)
	until := t0.Add(5 * time.Second)
	got2, err := s.Reconcile(ctx(t), op(name, got.Gen, t0), got.Seq, store.Snapshot{State: store.Open, Until: until, Level: 2})
	require.NoError(t, err)
	assert.Equal(t, store.Open, got2.State, "a trip made during the outage is kept")
	assert.True(t, got2.Until.Equal(until))
	assert.Equal(t, 2, got2.Level)
}

// testReconcileLoses: when the record moved on, it wins.
func testReconcileLoses(t *testing.T, s store.Store) {
	name, snap := register(t, s, "rec-lose")
	o := open(t, s, name, snap.Gen)
	got, err := s.Reconcile(ctx(t), op(name, o.Gen, t0), snap.Seq, store.Snapshot{State: store.Closed})
	require.NoError(t, err)
	assert.Equal(t, o.Seq, got.Seq, "the record changed since the caller saw it: it stays")
	assert.Equal(t, store.Open, got.State)
}

// testSeqNeverGoesBack: every answer and every snapshot handed to a watcher
// has a Seq no lower than an earlier answer's, whatever the operations: a
// store orders the snapshots of a record for ever (breakers rely on it; a
// store that must repair a record gives it a Seq past everything it handed
// out, or a breaker can only detect the step back on its next call).
func testSeqNeverGoesBack(t *testing.T, s store.Store) {
	name, snap := register(t, s, "seq")
	var mu sync.Mutex
	var watched uint64
	stop := s.Watch(name, func(x store.Snapshot) {
		mu.Lock()
		watched = max(watched, x.Seq)
		mu.Unlock()
	})
	defer stop()
	last := snap.Seq
	check := func(x store.Snapshot, err error, what string) {
		t.Helper()
		require.NoError(t, err, what)
		assert.GreaterOrEqual(t, x.Seq, last, "%s: the Seq went back", what)
		last = max(last, x.Seq)
	}
	gen := snap.Gen
	now := t0
	for i := range 30 {
		now = now.Add(time.Second)
		var x store.Snapshot
		var err error
		switch i % 6 {
		case 0, 1:
			x, err = s.Failure(ctx(t), op(name, gen, now))
		case 2:
			x, _, err = s.Claim(ctx(t), op(name, gen, now.Add(set.MaxTTL)))
		case 3:
			x, err = s.Success(ctx(t), op(name, gen, now))
		case 4:
			x, err = s.Expire(ctx(t), op(name, gen, now.Add(set.MaxTTL)))
		case 5:
			x, err = s.Force(ctx(t), op(name, gen, now), store.State(i%3))
		}
		check(x, err, "operation")
		gen = x.Gen
	}
	_, x, err := s.Register(ctx(t), name, set)
	check(x, err, "registration")
	mu.Lock()
	defer mu.Unlock()
	assert.LessOrEqual(t, watched, last, "a watcher was handed a Seq no answer had")
}

// testUnwatched: a store may drop a record nobody watches (the memory store
// does when the last watcher stops; Redis when it has been idle long), but
// a record registered again under the name continues its order: its Seq
// is past every Seq handed out before, so a breaker that saw the old one
// is not left ignoring the new one.
func testUnwatched(t *testing.T, s store.Store) {
	name, snap := register(t, s, "unwatched")
	stop := s.Watch(name, func(store.Snapshot) {})
	o := open(t, s, name, snap.Gen)
	stop()
	_, again, err := s.Register(ctx(t), name, set)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, again.Seq, o.Seq, "a record registered again went back in its order")
	if again.State == store.Closed && again.Gen != o.Gen {
		assert.Greater(t, again.Seq, o.Seq, "a dropped record came back with an old Seq")
	}
	x, err := s.Force(ctx(t), op(name, 0, t0), store.Isolated)
	require.NoError(t, err)
	assert.Greater(t, x.Seq, o.Seq)
}

func testWatch(t *testing.T, s store.Store) {
	name, snap := register(t, s, "w")
	var mu sync.Mutex
	var seen []store.Snapshot
	stop := s.Watch(name, func(x store.Snapshot) {
		mu.Lock()
		seen = append(seen, x)
		mu.Unlock()
	})
	saw := func(st store.State, gen uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range seen {
			if x.State == st && x.Gen == gen {
				return true
			}
		}
		return false
	}
	// Changes made after Watch returns reach the watcher, possibly later
	// (a shared store delivers them by pub/sub).
	o := open(t, s, name, snap.Gen)
	require.Eventually(t, func() bool { return saw(store.Open, o.Gen) },
		10*time.Second, 5*time.Millisecond, "the watcher was not told the circuit opened")
	c, err := s.Force(ctx(t), op(name, 0, t0), store.Closed)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return saw(store.Closed, c.Gen) },
		10*time.Second, 5*time.Millisecond, "the watcher was not told the circuit closed")

	stop()
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	_, err = s.Force(ctx(t), op(name, 0, t0), store.Open)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // give a stray delivery the chance to show
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, seen, n, "no deliveries after stop")
}
