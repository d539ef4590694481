// Package storetest is the conformance suite for implementations of
// store.Store. A store passes when
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newMyStore(t) })
//	}
//
// passes, under go test -race. newStore is called once per subtest and must
// return a store whose circuits are independent of other subtests' (a fresh
// store, or one under a fresh key prefix); clean it up with t.Cleanup.
package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RegisterFirstWins", testRegisterFirstWins},
		{"RegisterRace", testRegisterRace},
		{"FailuresOpenAtThreshold", testFailuresOpen},
		{"SuccessResetsFailures", testSuccessResets},
		{"StaleGenerationIgnored", testStaleGeneration},
		{"ConcurrentFailuresOpenOnce", testConcurrentFailuresOpenOnce},
		{"ExpireAfterTTL", testExpire},
		{"ClaimsAreExclusive", testClaimsExclusive},
		{"ClaimExpiresOpen", testClaimExpiresOpen},
		{"ReleaseFreesSlot", testRelease},
		{"TrialsCloseOrReopen", testTrials},
		{"ReportedTrialEndsItsLease", testReportedTrial},
		{"Force", testForce},
		{"UnregisteredCircuitIsCreated", testUnregistered},
		{"CircuitsAreIndependent", testIndependent},
		{"Watch", testWatch},
		{"TrialLeaseRunsOut", testLease},
		{"BackoffGrowsToMaxTTL", testBackoff},
		{"Isolate", testIsolate},
		{"RecordOpensAtRate", testRecord},
		{"RecordWindowRolls", testRecordRolls},
		{"ReconcileWhenUnchanged", testReconcile},
		{"ReconcileLosesToNewerRecord", testReconcileLoses},
		{"SeqNeverGoesBack", testSeqNeverGoesBack},
		{"UnwatchedRecordsGoOrStayInOrder", testUnwatched},
		{"FailuresInOneStep", testFailureBatch},
		{"NoGenerationIsARead", testGenZeroReads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var (
	t0  = time.Unix(1_700_000_000, 0)
	set = store.Settings{Threshold: 3, TTL: 10 * time.Second, Trials: 2,
		MaxTTL: 35 * time.Second, FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 4}
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// register registers a circuit with a name unique to the test (odd
// characters included, as real names have them) and returns its snapshot.
func register(t *testing.T, s store.Store, suffix string) (string, store.Snapshot) {
	t.Helper()
	name := t.Name() + " {payments}:é/" + suffix
	got, snap, err := s.Register(ctx(t), name, set)
	require.NoError(t, err)
	require.Equal(t, set, got)
	require.Equal(t, store.Closed, snap.State)
	return name, snap
}

func op(name string, gen uint64, now time.Time) store.Op {
	return store.Op{Circuit: name, Settings: set, Gen: gen, Now: now}
}

// open trips the circuit through failures and returns the open snapshot.
func open(t *testing.T, s store.Store, name string, gen uint64) store.Snapshot {
	t.Helper()
	var snap store.Snapshot
	for range set.Threshold {
		var err error
		snap, err = s.Failure(ctx(t), op(name, gen, t0))
		require.NoError(t, err)
	}
	require.Equal(t, store.Open, snap.State)
	return snap
}

func halfOpen(t *testing.T, s store.Store, name string, gen uint64) store.Snapshot {
	t.Helper()
	o := open(t, s, name, gen)
	snap, err := s.Expire(ctx(t), op(name, o.Gen, t0.Add(set.TTL)))
	require.NoError(t, err)
	require.Equal(t, store.HalfOpen, snap.State)
	return snap
}

func testRegisterFirstWins(t *testing.T, s store.Store) {
	name, _ := register(t, s, "a")
	other := store.Settings{Threshold: 7, TTL: time.Minute, Trials: 1, FailureRate: 0.2, Window: time.Minute, MinCalls: 1}
	got, snap, err := s.Register(ctx(t), name, other)
	require.NoError(t, err)
	assert.Equal(t, set, got, "the first registration's settings stay in force")
	assert.Equal(t, store.Closed, snap.State)
}

func testRegisterRace(t *testing.T, s store.Store) {
	name := t.Name() + "/race"
	const n = 16
	got := make([]store.Settings, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := store.Settings{Threshold: i + 1, TTL: time.Duration(i+1) * time.Second, Trials: 1}
			g, _, err := s.Register(ctx(t), name, mine)
			assert.NoError(t, err)
			got[i] = g
		}()
	}
	wg.Wait()
	for i := range n {
		assert.Equal(t, got[0], got[i], "every registrant sees the winner's settings")
	}
}

func testFailuresOpen(t *testing.T, s store.Store) {
	name, snap := register(t, s, "f")
	for i := 1; i < set.Threshold; i++ {
		next, err := s.Failure(ctx(t), op(name, snap.Gen, t0))
		require.NoError(t, err)
		assert.Equal(t, store.Closed, next.State)
		assert.Equal(t, i, next.Failures)
		assert.Equal(t, snap.Gen, next.Gen)
		assert.Greater(t, next.Seq, snap.Seq)
		snap = next
	}
	next, err := s.Failure(ctx(t), op(name, snap.Gen, t0))
	require.NoError(t, err)
	assert.Equal(t, store.Open, next.State)
	assert.Equal(t, snap.Gen+1, next.Gen)
	assert.Zero(t, next.Failures)
	assert.True(t, next.Until.Equal(t0.Add(set.TTL)), "Until = now + ttl, got %v", next.Until)
}

func testSuccessResets(t *testing.T, s store.Store) {
	name, snap := register(t, s, "s")
	for range set.Threshold - 1 {
		_, err := s.Failure(ctx(t), op(name, snap.Gen, t0))
		require.NoError(t, err)
	}
	next, err := s.Success(ctx(t), op(name, snap.Gen, t0))
	require.NoError(t, err)
	assert.Equal(t, store.Closed, next.State)
	assert.Zero(t, next.Failures)
	next, err = s.Failure(ctx(t), op(name, snap.Gen, t0))
	require.NoError(t, err)
	assert.Equal(t, store.Closed, next.State, "the count started again after the success")
	assert.Equal(t, 1, next.Failures)
}

func testStaleGeneration(t *testing.T, s store.Store) {
	name, snap := register(t, s, "g")
	o := open(t, s, name, snap.Gen)
	for _, f := range []func() (store.Snapshot, error){
		func() (store.Snapshot, error) { return s.Failure(ctx(t), op(name, snap.Gen, t0)) },
		func() (store.Snapshot, error) { return s.Success(ctx(t), op(name, snap.Gen, t0)) },
		func() (store.Snapshot, error) { return s.Expire(ctx(t), op(name, snap.Gen, t0.Add(time.Hour))) },
		func() (store.Snapshot, error) { return s.Release(ctx(t), op(name, snap.Gen, t0)) },
	} {
		got, err := f()
		require.NoError(t, err)
		assert.Equal(t, o.Gen, got.Gen, "an old generation's result must not move the state")
		assert.Equal(t, store.Open, got.State)
		assert.Equal(t, o.Seq, got.Seq)
	}
	_, granted, err := s.Claim(ctx(t), op(name, snap.Gen, t0.Add(time.Hour)))
	require.NoError(t, err)
	assert.False(t, granted)
}

func testConcurrentFailuresOpenOnce(t *testing.T, s store.Store) {
	name, snap := register(t, s, "c")
	const n = 64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Failure(ctx(t), op(name, snap.Gen, t0))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	_, final, err := s.Register(ctx(t), name, set)
	require.NoError(t, err)
	assert.Equal(t, store.Open, final.State)
	assert.Equal(t, snap.Gen+1, final.Gen, "opened exactly once")
}

func testExpire(t *testing.T, s store.Store) {
	name, snap := register(t, s, "e")
	o := open(t, s, name, snap.Gen)
	early, err := s.Expire(ctx(t), op(name, o.Gen, t0.Add(set.TTL-time.Millisecond)))
	require.NoError(t, err)
	assert.Equal(t, store.Open, early.State, "not before Until")
	h, err := s.Expire(ctx(t), op(name, o.Gen, t0.Add(set.TTL)))
	require.NoError(t, err)
	assert.Equal(t, store.HalfOpen, h.State)
	assert.Equal(t, o.Gen+1, h.Gen)
	again, err := s.Expire(ctx(t), op(name, o.Gen, t0.Add(set.TTL)))
	require.NoError(t, err)
	assert.Equal(t, h.Gen, again.Gen, "a second expiry of the same generation does nothing")
}

func testClaimsExclusive(t *testing.T, s store.Store) {
	name, snap := register(t, s, "x")
	h := halfOpen(t, s, name, snap.Gen)
	var granted atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.Claim(ctx(t), op(name, h.Gen, t0.Add(set.TTL)))
			assert.NoError(t, err)
			if ok {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(set.Trials), granted.Load(), "exactly Trials claims are granted")
}

func testClaimExpiresOpen(t *testing.T, s store.Store) {
	name, snap := register(t, s, "ce")
	o := open(t, s, name, snap.Gen)
	_, ok, err := s.Claim(ctx(t), op(name, o.Gen, t0.Add(set.TTL-time.Second)))
	require.NoError(t, err)
	assert.False(t, ok, "no trial while open")
	got, ok, err := s.Claim(ctx(t), op(name, o.Gen, t0.Add(set.TTL)))
	require.NoError(t, err)
	assert.True(t, ok, "a claim after Until moves the circuit to half-open and takes a slot")
	assert.Equal(t, store.HalfOpen, got.State)
	assert.Equal(t, 1, got.Claimed)
}

func testRelease(t *testing.T, s store.Store) {
	name, snap := register(t, s, "r")
	h := halfOpen(t, s, name, snap.Gen)
	now := t0.Add(set.TTL)
	for range set.Trials {
		_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
		require.True(t, ok)
	}
	_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
	require.NoError(t, err)
	require.False(t, ok, "all slots taken")
	rel, err := s.Release(ctx(t), op(name, h.Gen, now))
	require.NoError(t, err)
	assert.Equal(t, set.Trials-1, rel.Claimed)
	_, ok, err = s.Claim(ctx(t), op(name, h.Gen, now))
	require.NoError(t, err)
	assert.True(t, ok, "a released slot can be claimed again")
}

// testReportedTrial: a trial that succeeded gives its slot back, so its
// lease running out re-opens nothing; the half-open circuit waits for its
// next trial however long nobody calls, and closes after Trials successes.
func testReportedTrial(t *testing.T, s store.Store) {
	name, snap := register(t, s, "rt")
	h := halfOpen(t, s, name, snap.Gen)
	now := t0.Add(set.TTL)
	_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
	require.NoError(t, err)
	require.True(t, ok)
	got, err := s.Success(ctx(t), op(name, h.Gen, now))
	require.NoError(t, err)
	require.Equal(t, store.HalfOpen, got.State)
	assert.Zero(t, got.Claimed, "the trial reported: its slot is free")
	later := now.Add(3 * set.TTL)
	got, err = s.Expire(ctx(t), op(name, h.Gen, later))
	require.NoError(t, err)
	assert.Equal(t, store.HalfOpen, got.State, "a lease with no slot taken re-opens nothing")
	assert.Equal(t, h.Gen, got.Gen)
	for range set.Trials - 1 {
		_, ok, err = s.Claim(ctx(t), op(name, h.Gen, later))
		require.NoError(t, err)
		require.True(t, ok, "a later claim starts a new lease")
		got, err = s.Success(ctx(t), op(name, h.Gen, later))
		require.NoError(t, err)
	}
	assert.Equal(t, store.Closed, got.State)
}

func testTrials(t *testing.T, s store.Store) {
	t.Run("SuccessesClose", func(t *testing.T) {
		name, snap := register(t, s, "ts")
		h := halfOpen(t, s, name, snap.Gen)
		now := t0.Add(set.TTL)
		var last store.Snapshot
		for i := range set.Trials {
			_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
			require.NoError(t, err)
			require.True(t, ok)
			last, err = s.Success(ctx(t), op(name, h.Gen, now))
			require.NoError(t, err)
			if i < set.Trials-1 {
				assert.Equal(t, store.HalfOpen, last.State, "closes only after every trial succeeded")
			}
		}
		assert.Equal(t, store.Closed, last.State)
		assert.Equal(t, h.Gen+1, last.Gen)
		assert.Equal(t, set.Trials, last.Succeeded, "a generation its trials closed says so (a recovery)")
		assert.Zero(t, last.Failures)
	})
	t.Run("FailureReopens", func(t *testing.T) {
		name, snap := register(t, s, "tf")
		h := halfOpen(t, s, name, snap.Gen)
		now := t0.Add(set.TTL + time.Second)
		_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
		require.True(t, ok)
		got, err := s.Failure(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
		assert.Equal(t, store.Open, got.State)
		assert.Equal(t, h.Gen+1, got.Gen)
		assert.True(t, got.Until.Equal(now.Add(set.OpenFor(1))), "a failed trial: one backoff level up")
	})
}

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

func testUnregistered(t *testing.T, s store.Store) {
	name := t.Name() + "/never-registered"
	got, err := s.Failure(ctx(t), op(name, 1, t0))
	require.NoError(t, err)
	assert.Equal(t, 1, got.Failures, "an operation on a lost record recreates it from Op.Settings")
	st, _, err := s.Register(ctx(t), name, store.Settings{Threshold: 9, TTL: time.Hour, Trials: 4})
	require.NoError(t, err)
	assert.Equal(t, set, st)
}

func testIndependent(t *testing.T, s store.Store) {
	a, sa := register(t, s, "a")
	b, sb := register(t, s, "b")
	open(t, s, a, sa.Gen)
	_, got, err := s.Register(ctx(t), b, set)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State)
	assert.Equal(t, sb.Gen, got.Gen)
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
		5*time.Second, 5*time.Millisecond, "the watcher was not told the circuit opened")
	c, err := s.Force(ctx(t), op(name, 0, t0), store.Closed)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return saw(store.Closed, c.Gen) },
		5*time.Second, 5*time.Millisecond, "the watcher was not told the circuit closed")

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

// testLease: a trial that never reports cannot hold the circuit half-open
// past its lease (the TTL): Expire and Claim then re-open it, one backoff
// level up, and the next half-open period grants fresh slots.
func testLease(t *testing.T, s store.Store) {
	name, snap := register(t, s, "lease")
	h := halfOpen(t, s, name, snap.Gen)
	now := t0.Add(set.TTL)
	assert.True(t, h.Until.Equal(now.Add(set.TTL)), "the trial lease ends a TTL after half-open, got %v", h.Until)
	for range set.Trials {
		_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
		require.True(t, ok)
	}
	// Nobody reports. Before the lease ends nothing moves...
	early, err := s.Expire(ctx(t), op(name, h.Gen, h.Until.Add(-time.Nanosecond)))
	require.NoError(t, err)
	assert.Equal(t, store.HalfOpen, early.State)
	// ...at its end the circuit re-opens as if a trial had failed.
	o, err := s.Expire(ctx(t), op(name, h.Gen, h.Until))
	require.NoError(t, err)
	assert.Equal(t, store.Open, o.State, "a lease that ran out re-opens the circuit")
	assert.Equal(t, h.Gen+1, o.Gen)
	assert.Equal(t, 1, o.Level)
	assert.True(t, o.Until.Equal(h.Until.Add(2*set.TTL)), "one level up: twice the TTL, got %v", o.Until.Sub(h.Until))

	// Claim does the same when no timer ran Expire.
	name2, snap2 := register(t, s, "lease-claim")
	h2 := halfOpen(t, s, name2, snap2.Gen)
	_, ok, err := s.Claim(ctx(t), op(name2, h2.Gen, t0.Add(set.TTL)))
	require.NoError(t, err)
	require.True(t, ok)
	got, ok, err := s.Claim(ctx(t), op(name2, h2.Gen, h2.Until.Add(time.Hour)))
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, store.Open, got.State, "a claim after the lease re-opens the circuit")
	// The next half-open period has every slot free again.
	h3, err := s.Expire(ctx(t), op(name2, got.Gen, got.Until))
	require.NoError(t, err)
	require.Equal(t, store.HalfOpen, h3.State)
	assert.Zero(t, h3.Claimed)

	// A half-open circuit nobody calls stays half-open past its Until,
	// and a late claim starts a fresh lease.
	idle, err := s.Expire(ctx(t), op(name2, h3.Gen, h3.Until.Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, h3.Gen, idle.Gen, "no slot taken: nothing to take back")
	late := h3.Until.Add(2 * time.Hour)
	got, ok, err = s.Claim(ctx(t), op(name2, h3.Gen, late))
	require.NoError(t, err)
	assert.True(t, ok, "a claim on an idle half-open circuit is granted")
	assert.True(t, got.Until.Equal(late.Add(set.TTL)), "and starts the lease, got %v", got.Until)
}

// testBackoff: each failed trial doubles the open period up to MaxTTL; a
// close resets it.
func testBackoff(t *testing.T, s store.Store) {
	name, snap := register(t, s, "backoff")
	o := open(t, s, name, snap.Gen)
	assert.Zero(t, o.Level)
	now := t0
	want := []time.Duration{2 * set.TTL, 3*set.TTL + set.TTL/2, 3*set.TTL + set.TTL/2}
	for i, w := range want {
		now = o.Until
		h, err := s.Expire(ctx(t), op(name, o.Gen, now))
		require.NoError(t, err)
		require.Equal(t, store.HalfOpen, h.State)
		_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
		require.True(t, ok)
		o, err = s.Failure(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
		require.Equal(t, store.Open, o.State)
		assert.Equal(t, i+1, o.Level)
		assert.Equal(t, w, o.Until.Sub(now), "open period after %d failed trials", i+1)
	}
	now = o.Until
	h, err := s.Expire(ctx(t), op(name, o.Gen, now))
	require.NoError(t, err)
	var c store.Snapshot
	for range set.Trials {
		_, ok, err := s.Claim(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
		require.True(t, ok)
		c, err = s.Success(ctx(t), op(name, h.Gen, now))
		require.NoError(t, err)
	}
	require.Equal(t, store.Closed, c.State)
	assert.Zero(t, c.Level, "closing resets the backoff")
	o = open(t, s, name, c.Gen)
	assert.True(t, o.Until.Equal(t0.Add(set.TTL)), "back to the TTL")
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

// testRecord: merged counts open a rate circuit once the window holds
// MinCalls calls at the failure rate, not before.
func testRecord(t *testing.T, s store.Store) {
	name, snap := register(t, s, "rate")
	got, err := s.Record(ctx(t), op(name, snap.Gen, t0), 3, 3)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State, "below MinCalls")
	assert.Equal(t, 3, got.Calls)
	assert.Equal(t, 3, got.Failed)
	got, err = s.Record(ctx(t), op(name, snap.Gen, t0.Add(time.Second)), 5, 0)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State, "3 of 8 is below 50%")
	got, err = s.Record(ctx(t), op(name, snap.Gen, t0.Add(2*time.Second)), 0+1, 1)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State, "4 of 9 is below 50%")
	got, err = s.Record(ctx(t), op(name, snap.Gen, t0.Add(2*time.Second)), 1, 1)
	require.NoError(t, err)
	assert.Equal(t, store.Open, got.State, "5 of 10 is exactly 50%: open")
	assert.Equal(t, snap.Gen+1, got.Gen)
	stale, err := s.Record(ctx(t), op(name, snap.Gen, t0.Add(3*time.Second)), 100, 100)
	require.NoError(t, err)
	assert.Equal(t, got.Seq, stale.Seq, "counts of an old generation are dropped")
}

// testRecordRolls: counts older than the window stop counting.
func testRecordRolls(t *testing.T, s store.Store) {
	name, snap := register(t, s, "roll")
	_, err := s.Record(ctx(t), op(name, snap.Gen, t0), 10, 4)
	require.NoError(t, err)
	got, err := s.Record(ctx(t), op(name, snap.Gen, t0.Add(set.Window+time.Second)), 2, 1)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Calls, "the first counts rolled out of the window")
	assert.Equal(t, store.Closed, got.State, "2 calls is below MinCalls")
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

// testFailureBatch: a store that implements store.FailureBatcher applies n
// failures as n calls of Failure would.
func testFailureBatch(t *testing.T, s store.Store) {
	b, ok := s.(store.FailureBatcher)
	if !ok {
		t.Skip("the store does not batch failures")
	}
	name, snap := register(t, s, "batch")
	x, err := b.Failures(ctx(t), op(name, snap.Gen, t0), set.Threshold-1)
	require.NoError(t, err)
	want, _ := snap.FailureN(set, snap.Gen, set.Threshold-1, t0)
	assert.Equal(t, store.Closed, x.State)
	assert.Equal(t, want.Failures, x.Failures)
	x, err = b.Failures(ctx(t), op(name, x.Gen, t0), 5)
	require.NoError(t, err)
	assert.Equal(t, store.Open, x.State, "the batch that reaches the threshold opens it")
	assert.Zero(t, x.Failures)
	y, err := b.Failures(ctx(t), op(name, snap.Gen, t0), 3)
	require.NoError(t, err)
	assert.Equal(t, x.Gen, y.Gen, "failures of an ended generation are ignored")
	assert.Equal(t, store.Open, y.State)
}

// testGenZeroReads: generation 0 is none a record has: an operation on it
// changes nothing and answers with the record (a breaker uses that to
// re-read a circuit).
func testGenZeroReads(t *testing.T, s store.Store) {
	name, snap := register(t, s, "read")
	o := open(t, s, name, snap.Gen)
	x, err := s.Release(ctx(t), op(name, 0, t0))
	require.NoError(t, err)
	assert.Equal(t, o.Gen, x.Gen)
	assert.Equal(t, o.Seq, x.Seq)
	assert.Equal(t, store.Open, x.State)
}
