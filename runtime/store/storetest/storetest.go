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
		{"TrialLeaseAllowsClockSkew", testLeaseSkew},
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
