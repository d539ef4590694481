package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// Open and half-open: the open period, trial slots and their leases, backoff.

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

// testLeaseSkew: a lease's Until is the claimer's clock; a Claim or
// Expire with Op.Skew ends it only once its own Now is past Until + Skew,
// and an open period still ends at its Until.
func testLeaseSkew(t *testing.T, s store.Store) {
	const skew = 1500 * time.Millisecond
	withSkew := func(o store.Op) store.Op { o.Skew = skew; return o }
	name, snap := register(t, s, "skew")
	o := open(t, s, name, snap.Gen)
	h, ok, err := s.Claim(ctx(t), withSkew(op(name, o.Gen, o.Until))) // an open period ignores the skew
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, store.HalfOpen, h.State)
	for _, at := range []time.Time{h.Until, h.Until.Add(skew - time.Nanosecond)} {
		got, err := s.Expire(ctx(t), withSkew(op(name, h.Gen, at)))
		require.NoError(t, err)
		assert.Equal(t, store.HalfOpen, got.State, "Expire %v after Until, skew %v: the lease may still run on the claimer's clock", at.Sub(h.Until), skew)
		got, ok, err = s.Claim(ctx(t), withSkew(op(name, h.Gen, at)))
		require.NoError(t, err)
		assert.True(t, ok, "a claim %v after Until, skew %v, takes a slot of the running lease", at.Sub(h.Until), skew)
		assert.Equal(t, h.Gen, got.Gen)
		_, err = s.Release(ctx(t), op(name, h.Gen, at))
		require.NoError(t, err)
	}
	got, err := s.Expire(ctx(t), withSkew(op(name, h.Gen, h.Until.Add(skew))))
	require.NoError(t, err)
	assert.Equal(t, store.Open, got.State, "at Until + skew the lease has run out")
	assert.Equal(t, h.Gen+1, got.Gen)
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
