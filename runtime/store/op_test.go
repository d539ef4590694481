package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// plain hides Memory's FailureBatcher: a store with the Store methods only.
type plain struct{ store.Store }

// TestDoMatchesApply: every kind of the table, sent to a store with Do,
// gives the snapshot Apply gives from the same snapshot, with or without
// a FailureBatcher.
func TestDoMatchesApply(t *testing.T) {
	set := store.Settings{Threshold: 3, TTL: 10 * time.Second, Trials: 2, FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 4}
	now := time.Unix(1_700_000_000, 0)
	steps := []store.Change{
		{Kind: store.Failure},
		{Kind: store.Success},
		{Kind: store.Failures, N: 2},
		{Kind: store.Failure}, // opens
		{Kind: store.Claim},   // too early: refused
		{Kind: store.Expire},  // half-open
		{Kind: store.Claim},
		{Kind: store.Release},
		{Kind: store.Claim},
		{Kind: store.Success},
		{Kind: store.Claim},
		{Kind: store.Success}, // closed by its trials
		{Kind: store.Record, N: 4, Failed: 3},
		{Kind: store.Force, To: store.Isolated},
		{Kind: store.Force, To: store.Closed},
	}
	for _, st := range []store.Store{store.NewMemory(), plain{store.NewMemory()}} {
		ctx := context.Background()
		_, want, err := st.Register(ctx, "c", set)
		require.NoError(t, err)
		var w store.Window
		seen := map[store.State]int{}
		grants := 0
		for i, ch := range steps {
			now = now.Add(6 * time.Second)
			op := store.Op{Circuit: "c", Settings: set, Gen: want.Gen, Now: now}
			next, _, wantGranted := want.Apply(set, &w, op.Gen, op.Now, &ch)
			got, granted, err := store.Do(ctx, st, op, ch)
			require.NoError(t, err, "step %d %v", i, ch.Kind)
			assert.Equal(t, next, got, "step %d %v", i, ch.Kind)
			assert.Equal(t, wantGranted, granted, "step %d %v", i, ch.Kind)
			want = next
			seen[want.State]++
			if wantGranted {
				grants++
			}
		}
		assert.Equal(t, store.Closed, want.State)
		assert.Positive(t, seen[store.Open])
		assert.Positive(t, seen[store.HalfOpen])
		assert.Positive(t, seen[store.Isolated])
		assert.Equal(t, 3, grants, "three claims granted")
		reconciled := store.Change{Kind: store.Reconcile, Base: want.Seq, Want: store.Snapshot{State: store.Open, Until: now.Add(time.Second)}}
		got, _, err := store.Do(ctx, st, store.Op{Circuit: "c", Settings: set, Gen: want.Gen, Now: now}, reconciled)
		require.NoError(t, err)
		next, changed, _ := want.Apply(set, &w, want.Gen, now, &reconciled)
		assert.True(t, changed)
		assert.Equal(t, next, got)
	}
}

// TestKindOutsideTable: the zero Kind is no operation: Apply leaves the
// snapshot as it is, Do says so; Failures with no failure is refused by a
// store that has no batcher.
func TestKindOutsideTable(t *testing.T) {
	set := store.Settings{Threshold: 1, TTL: time.Second, Trials: 1}
	s := store.New()
	next, changed, granted := s.Apply(set, nil, s.Gen, time.Now(), &store.Change{})
	assert.Equal(t, s, next)
	assert.False(t, changed)
	assert.False(t, granted)

	op := store.Op{Circuit: "c", Settings: set, Gen: 1, Now: time.Now()}
	_, _, err := store.Do(context.Background(), store.NewMemory(), op, store.Change{})
	assert.ErrorContains(t, err, "no operation kind(0)")
	_, _, err = store.Do(context.Background(), plain{store.NewMemory()}, op, store.Change{Kind: store.Failures})
	assert.ErrorContains(t, err, "bad count 0")

	assert.Equal(t, "failures", store.Failures.String())
	assert.Equal(t, "reconcile", store.Reconcile.String())
	assert.Equal(t, "kind(200)", store.Kind(200).String())
	assert.True(t, store.Claim.Timed())
	assert.False(t, store.Success.Timed())
	assert.True(t, store.Reconcile.Timed())
}
