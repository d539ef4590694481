package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// Regression tests of the simulator's findings 102-104 (see
// runtime/internal/sim/regress_test.go for the seeds that found them).

// Finding 102: a breaker on local state (no store, or detached by Remove
// or Factory.Close) that applied a trial's report re-armed the lease timer
// from the zero time (292 years): a hung trial's lease never ended.
func TestLocalTrialReportKeepsLeaseTimer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []purgatory.Option
		detach func(f *purgatory.Factory)
	}{
		{name: "no store"},
		{name: "removed", opts: []purgatory.Option{purgatory.WithStore(store.NewMemory())},
			detach: func(f *purgatory.Factory) { f.Remove("x") }},
		{name: "factory closed", opts: []purgatory.Option{purgatory.WithStore(store.NewMemory())},
			detach: func(f *purgatory.Factory) { require.NoError(t, f.Close()) }},
	} {
		for _, report := range []string{"cancelled", "success"} {
			t.Run(tc.name+"/"+report, func(t *testing.T) {
				e := newEnv(t, tc.opts...)
				b := e.f.Breaker("x", purgatory.Config{Threshold: 1, TTL: time.Second, Trials: 3})
				trip(t, b)
				if tc.detach != nil {
					tc.detach(e.f)
				}
				e.clk.Advance(time.Second)
				require.Equal(t, purgatory.HalfOpen, b.State())
				_, err := b.Allow(context.Background()) // a trial that hangs
				require.NoError(t, err)
				ctx, cancel := context.WithCancel(context.Background())
				tok, err := b.Allow(ctx) // a trial that reports
				require.NoError(t, err)
				e.clk.Advance(100 * time.Millisecond)
				if report == "cancelled" {
					cancel()
					b.Done(ctx, tok, context.Canceled) // gives its slot back
				} else {
					b.Done(ctx, tok, nil) // one success of three
				}
				cancel()
				require.Equal(t, purgatory.HalfOpen, b.State())
				st := b.Status()
				assert.Equal(t, e.clk.Now().Add(900*time.Millisecond), st.Until, "the lease still ends 1s after its first claim")
				e.clk.Advance(time.Second) // the lease ran out; the open period one level up (2s) has not
				assert.Equal(t, purgatory.Open, b.State(), "the hung trial's lease ended by its timer")
			})
		}
	}
}

// Finding 103: a second Done of a trial whose slot was given back freed
// the slot of a later trial of the generation (its slot number was reused),
// so more trials ran than Trials allows.
func TestSecondDoneOfReleasedTrialIsIgnored(t *testing.T) {
	for _, report := range []string{"cancelled", "success", "failure"} {
		t.Run(report, func(t *testing.T) {
			m := store.NewMemory()
			clk, fa, fb, _ := pair(t, m)
			a := fa.Breaker("dd", purgatory.Config{Threshold: 1, TTL: time.Second, Trials: 1})
			b := fb.Breaker("dd", purgatory.Config{})
			trip(t, a)
			clk.Advance(time.Second)
			ctx, cancel := context.WithCancel(context.Background())
			first, err := a.Allow(ctx)
			require.NoError(t, err)
			cancel()
			a.Done(ctx, first, context.Canceled) // the caller gave up: its slot is given back
			second, err := a.Allow(context.Background())
			require.NoError(t, err, "the slot given back is claimed again")

			switch report { // the first trial is reported again
			case "cancelled":
				a.Done(ctx, first, context.Canceled)
			case "success":
				a.Done(ctx, first, nil)
			case "failure":
				a.Done(ctx, first, errBoom)
			}
			assert.Equal(t, purgatory.HalfOpen, a.State(), "a second report changes nothing")
			_, snap, err := m.Register(context.Background(), "dd", store.Settings{})
			require.NoError(t, err)
			assert.Equal(t, 1, snap.Claimed, "the second trial still holds its slot in the store")
			_, err = b.Allow(context.Background())
			assert.ErrorIs(t, err, purgatory.ErrOpen, "no second trial in flight in another process")
			_, err = a.Allow(context.Background())
			assert.ErrorIs(t, err, purgatory.ErrOpen, "nor in this one")

			a.Done(context.Background(), second, nil)
			assert.Equal(t, purgatory.Closed, a.State(), "the second trial's own report counts")
			assert.Equal(t, purgatory.Closed, b.State())
		})
	}
	t.Run("no store", func(t *testing.T) {
		e := newEnv(t)
		b := e.f.Breaker("dd", purgatory.Config{Threshold: 1, TTL: time.Second, Trials: 1})
		trip(t, b)
		e.clk.Advance(time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		first, err := b.Allow(ctx)
		require.NoError(t, err)
		cancel()
		b.Done(ctx, first, context.Canceled)
		second, err := b.Allow(context.Background())
		require.NoError(t, err)
		b.Done(ctx, first, context.Canceled)
		_, err = b.Allow(context.Background())
		assert.ErrorIs(t, err, purgatory.ErrOpen, "one trial at a time")
		b.Done(context.Background(), second, nil)
		assert.Equal(t, purgatory.Closed, b.State())
	})
}

// deafStore is a failingStore whose watch messages are lost while it is
// down, as they are when the network between a process and Redis is.
type deafStore struct{ *failingStore }

func (s *deafStore) Watch(name string, fn func(store.Snapshot)) (stop func()) {
	return s.failingStore.Watch(name, func(snap store.Snapshot) {
		if s.err() == nil {
			fn(snap)
		}
	})
}

// Finding 104: a trial granted on local state while the store was away
// carried a generation this process numbered itself; when the store's
// record reached the same number by another process, the trial's report
// freed that process's slot (or closed the circuit under its trial).
func TestLocalTrialNeverReportsToStore(t *testing.T) {
	for _, report := range []string{"cancelled", "success", "failure"} {
		t.Run(report, func(t *testing.T) {
			m := store.NewMemory()
			sa := &deafStore{failingStore: &failingStore{Memory: m}} // process a's link to the store, which fails
			clk := clocktest.New(time.Unix(1_700_000_000, 0))
			fa := purgatory.NewFactory(purgatory.WithStore(sa), purgatory.WithClock(clk))
			fb := purgatory.NewFactory(purgatory.WithStore(m), purgatory.WithClock(clk))
			t.Cleanup(func() { fa.Close(); fb.Close() })
			cfg := purgatory.Config{Threshold: 1, TTL: 10 * time.Second, Trials: 1}
			a, b := fa.Breaker("lg", cfg), fb.Breaker("lg", cfg)
			trip(t, a) // open, generation 2, in the store
			require.Equal(t, purgatory.Open, b.State())

			sa.setDown(true)
			clk.Advance(10 * time.Second) // both end the open period: a on its own (its generation 3), b in the store (the store's 3)
			require.Equal(t, purgatory.HalfOpen, a.State())
			require.Equal(t, purgatory.HalfOpen, b.State())
			ctx, cancel := context.WithCancel(context.Background())
			local, err := a.Allow(ctx) // granted on a's local state
			require.NoError(t, err)
			remote, err := b.Allow(context.Background()) // granted by the store
			require.NoError(t, err)

			sa.setDown(false)
			clk.Advance(time.Second) // a's reconciliation: the record moved on, it wins
			require.Equal(t, purgatory.HalfOpen, a.State())
			_, snap, err := m.Register(context.Background(), "lg", store.Settings{})
			require.NoError(t, err)
			require.Equal(t, 1, snap.Claimed)
			gen := snap.Gen

			switch report {
			case "cancelled":
				cancel()
				a.Done(ctx, local, context.Canceled)
			case "success":
				a.Done(ctx, local, nil)
			case "failure":
				a.Done(ctx, local, errBoom)
			}
			cancel()
			_, snap, err = m.Register(context.Background(), "lg", store.Settings{})
			require.NoError(t, err)
			assert.Equal(t, gen, snap.Gen, "the local trial's report leaves the store's generation alone")
			assert.Equal(t, 1, snap.Claimed, "b's trial still holds its slot in the store")
			_, err = a.Allow(context.Background())
			assert.ErrorIs(t, err, purgatory.ErrOpen, "no second trial in flight beside b's")

			b.Done(context.Background(), remote, nil)
			assert.Equal(t, purgatory.Closed, b.State())
			assert.Equal(t, purgatory.Closed, a.State())
		})
	}
}

// TestRegisteredDuringOutageMeetsTheStore (the simulator's seed 26350): a
// breaker registered while its store was down works on local state; once the
// store is back it learns the store's record after the back-off, even if its
// only calls are closed successes (which make no store call) and the record
// never changes (so no watch message comes).
func TestRegisteredDuringOutageMeetsTheStore(t *testing.T) {
	clk := clocktest.New(time.Unix(1000, 0))
	m := store.NewMemory()
	cfg := purgatory.Config{Threshold: 1, TTL: time.Hour}
	other := purgatory.NewFactory(purgatory.WithStore(m), purgatory.WithClock(clk))
	t.Cleanup(func() { _ = other.Close() })
	other.Breaker("x", cfg).Open()

	fs := &failingStore{Memory: m}
	fs.setDown(true)
	f := purgatory.NewFactory(purgatory.WithStore(fs), purgatory.WithClock(clk))
	t.Cleanup(func() { _ = f.Close() })
	b := f.Breaker("x", cfg)
	assert.Equal(t, purgatory.Closed, b.State(), "the store is down: local state")
	fs.setDown(false)
	require.NoError(t, b.Do(context.Background(), func(context.Context) error { return nil }))
	clk.Advance(2 * time.Second) // past the back-off
	assert.Equal(t, purgatory.Open, b.State(), "registered again: the store's record, opened by another process, is adopted")
}

// A trial granted on local state while the store failed, whose call never
// reports, must not leave this process rejecting every call once another
// process's trial came and went in the store: the announcement of the
// store's record (the same generation, no slot taken) stopped the lease
// timer, and this process still held its one slot, so it rejected every
// call without ever asking the store again.
func TestLocalTrialLeaseEndsAfterAnotherTrial(t *testing.T) {
	m := store.NewMemory()
	sa := &failingStore{Memory: m}
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	fa := purgatory.NewFactory(purgatory.WithStore(sa), purgatory.WithClock(clk))
	fb := purgatory.NewFactory(purgatory.WithStore(m), purgatory.WithClock(clk))
	t.Cleanup(func() { fa.Close(); fb.Close() })
	cfg := purgatory.Config{Threshold: 1, TTL: 200 * time.Millisecond, Trials: 1}
	a, b := fa.Breaker("lh", cfg), fb.Breaker("lh", cfg)
	trip(t, a)
	clk.Advance(200 * time.Millisecond)
	require.Equal(t, purgatory.HalfOpen, a.State())
	require.Equal(t, purgatory.HalfOpen, b.State())

	sa.setDown(true)
	_, err := a.Allow(context.Background()) // granted on a's local state; never reports
	require.NoError(t, err)
	sa.setDown(false)

	ctx, cancel := context.WithCancel(context.Background())
	tok, err := b.Allow(ctx) // a trial in the store, given back unused
	require.NoError(t, err)
	cancel()
	b.Done(ctx, tok, context.Canceled)

	for range 50 { // well past the lease + the skew + the back-off
		clk.Advance(100 * time.Millisecond)
	}
	_, err = a.Allow(context.Background())
	assert.NoError(t, err, "5s after a 200ms lease began, a lets a call through (state %v)", a.State())
}

// The same for a trial the store granted, once the store lost track of
// its slot (a failover to a replica that missed the claim, announced as
// the same generation with no slot taken): the hung trial's lease still
// ends on this process's clock.
func TestForgottenTrialLeaseEnds(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	fs := &forgeStore{failingStore: &failingStore{Memory: store.NewMemory()}}
	f := purgatory.NewFactory(purgatory.WithStore(fs), purgatory.WithClock(clk))
	t.Cleanup(func() { f.Close() })
	b := f.Breaker("fl", purgatory.Config{Threshold: 1, TTL: 200 * time.Millisecond, Trials: 1})
	trip(t, b)
	clk.Advance(200 * time.Millisecond)
	_, err := b.Allow(context.Background()) // granted by the store; never reports
	require.NoError(t, err)
	_, rec, err := fs.Memory.Register(context.Background(), "fl", store.Settings{})
	require.NoError(t, err)
	require.Equal(t, 1, rec.Claimed)
	rec.Claimed, rec.Seq = 0, rec.Seq+100 // the slot forgotten
	fs.forge("fl", rec)
	_, err = b.Allow(context.Background())
	require.Error(t, err, "the one slot is held")

	for range 50 {
		clk.Advance(100 * time.Millisecond)
	}
	_, err = b.Allow(context.Background())
	assert.NoError(t, err, "5s after a 200ms lease began, a call is let through (state %v)", b.State())
}

// The same while the store stays down: the lease ends on local state.
func TestForgottenTrialLeaseEndsStoreDown(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	fs := &forgeStore{failingStore: &failingStore{Memory: store.NewMemory()}}
	f := purgatory.NewFactory(purgatory.WithStore(fs), purgatory.WithClock(clk))
	t.Cleanup(func() { f.Close() })
	b := f.Breaker("fd", purgatory.Config{Threshold: 1, TTL: 200 * time.Millisecond, Trials: 1})
	trip(t, b)
	clk.Advance(200 * time.Millisecond)
	_, err := b.Allow(context.Background()) // granted by the store; never reports
	require.NoError(t, err)
	_, rec, err := fs.Memory.Register(context.Background(), "fd", store.Settings{})
	require.NoError(t, err)
	rec.Claimed, rec.Seq = 0, rec.Seq+100 // the slot forgotten
	fs.forge("fd", rec)
	fs.setDown(true)

	for range 50 {
		clk.Advance(100 * time.Millisecond)
	}
	_, err = b.Allow(context.Background())
	assert.NoError(t, err, "5s after a 200ms lease began, a call is let through (state %v)", b.State())
}
