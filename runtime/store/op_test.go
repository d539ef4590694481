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

// TestStepAndTimed: Step is Apply in place, and leaves the snapshot as it
// was when it reports no change; a transition that Timed says does not
// read the clock is the same whatever the clock.
func TestStepAndTimed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	later := now.Add(time.Hour)
	until := now.Add(time.Second)
	var snaps []store.Snapshot
	for _, st := range []store.State{store.Closed, store.Open, store.HalfOpen, store.Isolated} {
		for failures := range 4 {
			for claimed := range 3 {
				snaps = append(snaps, store.Snapshot{State: st, Gen: 5, Seq: 9, Failures: failures, Claimed: claimed, Until: until, Level: 1})
			}
		}
	}
	changes := []store.Change{
		{Kind: store.Failure}, {Kind: store.Failures, N: 2}, {Kind: store.Success}, {Kind: store.Claim},
		{Kind: store.Release}, {Kind: store.Expire}, {Kind: store.Force, To: store.Open},
		{Kind: store.Record, N: 4, Failed: 3}, {Kind: store.Reconcile, Base: 9, Want: store.Snapshot{State: store.Open, Until: until}}, {},
	}
	for _, set := range []store.Settings{
		{Threshold: 3, TTL: time.Second, Trials: 2},
		{Threshold: 1, TTL: time.Second, Trials: 1},
		{TTL: time.Second, Trials: 1, FailureRate: 0.5, Window: time.Minute, MinCalls: 1},
	} {
		for _, s := range snaps {
			for _, gen := range []uint64{4, 5} {
				for _, c := range changes {
					var w store.Window
					want, wantChanged, wantGranted := s.Apply(set, &w, gen, now, &c)
					got, gw := s, store.Window{}
					changed, granted := got.Step(set, &gw, gen, now, &c)
					assert.Equal(t, want, got, "%+v %v gen %d", s, c.Kind, gen)
					assert.Equal(t, w, gw)
					assert.Equal(t, wantChanged, changed)
					assert.Equal(t, wantGranted, granted)
					if !changed {
						assert.Equal(t, s, got, "%+v %v gen %d: no change, yet changed", s, c.Kind, gen)
					}
					if !s.Timed(set, gen, &c) {
						var lw store.Window
						at, atChanged, atGranted := s.Apply(set, &lw, gen, later, &c)
						assert.Equal(t, want, at, "%+v %v gen %d: not timed, yet the clock matters", s, c.Kind, gen)
						assert.Equal(t, wantChanged, atChanged)
						assert.Equal(t, wantGranted, atGranted)
						assert.Equal(t, w, lw)
					}
				}
			}
		}
	}
	set := store.Settings{Threshold: 3, TTL: time.Second, Trials: 1}
	s := store.New()
	fail := store.Change{Kind: store.Failure}
	assert.False(t, s.Timed(set, s.Gen, &fail), "a failure below the threshold")
	s.Failures = 2
	assert.True(t, s.Timed(set, s.Gen, &fail), "the failure that opens the circuit")
	assert.False(t, s.Timed(set, s.Gen+1, &fail), "a failure of another generation")
	assert.True(t, s.Timed(set, s.Gen, &store.Change{Kind: store.Claim}))
	assert.False(t, s.Timed(set, s.Gen, &store.Change{Kind: store.Success}))
}
