package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// The closed state: failures, resets, generations, rate windows.

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
	for _, n := range []int{0, -1} {
		_, err = b.Failures(ctx(t), op(name, y.Gen, t0), n)
		assert.Error(t, err, "a count of %d is a caller's bug, not a read", n)
	}
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
