package runtime_test

import (
	"context"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// Issue 16, item 1: a threshold-only circuit whose shared record was
// registered with a failure rate by another process (a rollback after a
// deploy that added rate=) adopts the record's settings: its calls are
// counted into the window, nothing panics, and the conflict is reported.
func TestAdoptedRateSettings(t *testing.T) {
	_, fa, fb, rec := pair(t, store.NewMemory())
	withRate := purgatory.Config{FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 4, TTL: time.Minute}
	fb.Breaker("mixed", withRate)
	a := fa.Breaker("mixed", purgatory.Config{Threshold: 5, TTL: time.Minute})
	require.NotEmpty(t, rec.of(purgatory.EventConfigConflict), "the conflict is reported")
	assert.Equal(t, 0.5, a.Config().FailureRate, "the record's settings are in force")
	require.NotPanics(t, func() {
		_ = call(a, nil)
		_ = call(a, nil)
		_ = call(a, errBoom)
	})
	assert.Equal(t, purgatory.Closed, a.State())
	require.NotPanics(t, func() { _ = call(a, errBoom) })
	assert.Equal(t, purgatory.Open, a.State(), "2 of 4 calls failed: the adopted rate opens it")
}

// mergeStore is a memory store that adds up what rate circuits merge into
// it and keeps their windows free of failures, so that every failure finds
// the local counts able to trip the circuit and merges at once.
type mergeStore struct {
	*store.Memory
	mu                  sync.Mutex
	calls, failed, torn int
}

func (s *mergeStore) Record(ctx context.Context, op store.Op, calls, failed int) (store.Snapshot, error) {
	s.mu.Lock()
	s.calls += calls
	s.failed += failed
	if failed > calls {
		s.torn++
	}
	s.mu.Unlock()
	return s.Memory.Record(ctx, op, calls, 0)
}

// Issue 16, item 7: a rate circuit's counts are exact under concurrency:
// callers that record while merges run lose nothing, and no merge carries
// more failures than calls.
func TestRateCountsExactUnderConcurrency(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(16))
	st := &mergeStore{Memory: store.NewMemory()}
	e := newEnv(t, purgatory.WithStore(st))
	b := e.f.Breaker("exact", purgatory.Config{FailureRate: 1e-9, Window: time.Hour, MinCalls: 1})
	const goroutines, calls = 16, 3000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				err := error(nil)
				if (g+i)%3 != 1 {
					err = errBoom
				}
				_ = call(b, err)
			}
		}()
	}
	wg.Wait()
	e.clk.Advance(time.Hour / 10) // the last merge
	failed := 0
	for g := range goroutines {
		for i := range calls {
			if (g+i)%3 != 1 {
				failed++
			}
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	assert.Equal(t, goroutines*calls, st.calls)
	assert.Equal(t, failed, st.failed)
	assert.Zero(t, st.torn, "merges with more failures than calls")
	assert.Equal(t, purgatory.Closed, b.State())
}

// Issue 16, item 7: with every call failing, a rate=100% circuit opens
// however the merges interleave with the callers (the scenario; on
// two cores it did not fail before the fix, the merge check above did).
func TestRateAllFailingOpens(t *testing.T) {
	for range 2 {
		e := newEnv(t)
		b := e.f.Breaker("all", purgatory.Config{FailureRate: 1, Window: time.Hour, MinCalls: 10_000, TTL: time.Hour})
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 1000 {
					_ = call(b, errBoom)
				}
			}()
		}
		wg.Wait()
		e.clk.Advance(time.Minute)
		require.Equal(t, purgatory.Open, b.State(), "16,000 failures of 16,000 calls")
	}
}

// Issue 16, item 8: a window belongs to one closed generation, with the
// calls not merged yet: Close clears them.
func TestRateCloseClearsUnmergedCounts(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("close", purgatory.Config{FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 20})
	for range 19 {
		_ = call(b, errBoom)
	}
	b.Close()
	_ = call(b, errBoom)
	assert.Equal(t, purgatory.Closed, b.State(), "1 call since Close")
	e.clk.Advance(time.Minute)
	assert.Equal(t, purgatory.Closed, b.State())
	assert.Equal(t, 1, b.Status().Calls)
}

// Issue 16, item 8: a threshold trip that recovers within one bucket leaves
// no calls of the old generation in the new one's window.
func TestRateTripWithinBucketStartsAfresh(t *testing.T) {
	for _, shared := range []bool{false, true} {
		var f *purgatory.Factory
		var clk interface{ Advance(time.Duration) }
		if shared {
			c, fa, _, _ := pair(t, store.NewMemory())
			f, clk = fa, c
		} else {
			e := newEnv(t)
			f, clk = e.f, e.clk
		}
		b := f.Breaker("trip", purgatory.Config{Threshold: 3, TTL: time.Second, FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 6})
		_ = call(b, nil)
		_ = call(b, nil)
		for range 3 {
			_ = call(b, errBoom)
		}
		require.Equal(t, purgatory.Open, b.State())
		clk.Advance(time.Second)
		require.NoError(t, call(b, nil), "the trial")
		require.Equal(t, purgatory.Closed, b.State())
		_ = call(b, nil)
		_ = call(b, errBoom)
		_ = call(b, errBoom)
		clk.Advance(5 * time.Second) // merged
		assert.Equal(t, purgatory.Closed, b.State(), "3 calls since the trial closed it (shared %v)", shared)
		assert.Equal(t, 3, b.Status().Calls)
	}
}

// Issue 16, item 8: a trial that closes the circuit starts a window of its
// own, also when old calls were not merged.
func TestRateTrialCloseClearsUnmergedCounts(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("trial", purgatory.Config{FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 20, TTL: time.Second})
	for range 19 {
		_ = call(b, errBoom)
	}
	b.Open()
	e.clk.Advance(time.Second)
	require.NoError(t, call(b, nil))
	require.Equal(t, purgatory.Closed, b.State())
	_ = call(b, errBoom)
	assert.Equal(t, purgatory.Closed, b.State(), "2 calls since the trial closed it")
}

// Issue 16, item 9: in one process, a failure whose calls alone reach the
// rate and the minimum trips the circuit on that call, also when old calls
// aged out of the window since it was last merged.
func TestRateTripsOnTheFailingCall(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("late", purgatory.Config{FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 10, TTL: time.Hour})
	for range 100 {
		_ = call(b, nil)
	}
	e.clk.Advance(4 * time.Second)  // merged
	e.clk.Advance(31 * time.Second) // aged out, not merged since
	for range 9 {
		_ = call(b, errBoom)
	}
	require.Equal(t, purgatory.Closed, b.State(), "9 calls: below the minimum")
	_ = call(b, errBoom)
	assert.Equal(t, purgatory.Open, b.State(), "10 failures of 10 calls in the window")
}

// Issue 16, item 10, the rule for a shared store: the store opens on the
// fleet's window as merged. Another process's merged successes hold the
// circuit closed against this process's failures, merged at once ...
func TestFleetRateMergedCountsDecide(t *testing.T) {
	clk, fa, fb, _ := pair(t, store.NewMemory())
	cfg := purgatory.Config{FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 20, TTL: time.Hour}
	a, b := fa.Breaker("fleet", cfg), fb.Breaker("fleet", cfg)
	for range 200 {
		_ = call(b, nil)
	}
	clk.Advance(3 * time.Second) // B merges, once per bucket
	for range 20 {
		_ = call(a, errBoom)
	}
	assert.Equal(t, purgatory.Closed, a.State(), "20 failures of 220 calls")
	clk.Advance(10 * time.Second)
	assert.Equal(t, purgatory.Closed, a.State())
	assert.Equal(t, purgatory.Closed, b.State())
	assert.Equal(t, 220, a.Status().Calls)
}

// ... but successes another process has not merged yet (at most its last
// bucket, the documented staleness bound) do not: A's failures trip the
// circuit at once, for both processes ...
func TestFleetRateUnmergedCountsOfOthersDoNotHold(t *testing.T) {
	_, fa, fb, _ := pair(t, store.NewMemory())
	cfg := purgatory.Config{FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 20, TTL: time.Hour}
	a, b := fa.Breaker("fleet", cfg), fb.Breaker("fleet", cfg)
	for range 200 {
		_ = call(b, nil)
	}
	for range 19 {
		_ = call(a, errBoom)
	}
	require.Equal(t, purgatory.Closed, a.State())
	_ = call(a, errBoom)
	assert.Equal(t, purgatory.Open, a.State(), "the store's window holds A's 20 failures only")
	assert.Equal(t, purgatory.Open, b.State())
}

// ... and neither do successes that aged out of the window since they were
// merged: the trip comes on the failing call.
func TestFleetRateAgedOutCountsDoNotHold(t *testing.T) {
	clk, fa, fb, _ := pair(t, store.NewMemory())
	cfg := purgatory.Config{FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 20, TTL: time.Hour}
	a, b := fa.Breaker("fleet", cfg), fb.Breaker("fleet", cfg)
	for range 200 {
		_ = call(b, nil)
	}
	clk.Advance(4 * time.Second)  // merged
	clk.Advance(31 * time.Second) // aged out
	for range 19 {
		_ = call(a, errBoom)
	}
	require.Equal(t, purgatory.Closed, a.State())
	_ = call(a, errBoom)
	assert.Equal(t, purgatory.Open, a.State(), "20 failures of 20 calls in the window")
	assert.Equal(t, purgatory.Open, b.State())
}

// Issue 16, item 2: a trial that reported gives its slot back: with
// Trials 2 and a client calling every 1.5 s (TTL 1 s), two successful trials
// close the circuit; the lease of a reported trial costs no re-opening.
func TestSuccessfulTrialsClose(t *testing.T) {
	for _, shared := range []bool{false, true} {
		var f *purgatory.Factory
		var clk interface{ Advance(time.Duration) }
		rec := &recorder{}
		if shared {
			c, fa, _, r := pair(t, store.NewMemory())
			f, clk, rec = fa, c, r
		} else {
			e := newEnv(t)
			f, clk, rec = e.f, e.clk, e.rec
		}
		b := f.Breaker("trials", purgatory.Config{Threshold: 1, TTL: time.Second, Trials: 2, MaxTTL: 10 * time.Second})
		trip(t, b)
		rec.reset()
		for range 2 {
			clk.Advance(1500 * time.Millisecond)
			require.NoError(t, call(b, nil))
		}
		assert.Equal(t, purgatory.Closed, b.State(), "shared %v", shared)
		for _, ev := range rec.of(purgatory.EventStateChanged) {
			assert.NotEqual(t, purgatory.Open, ev.To, "re-opened from %s (shared %v)", ev.From, shared)
		}
	}
}

// Issue 16, item 2: a half-open circuit that nobody calls stays half-open
// and waits for its next trial, however long.
func TestHalfOpenWaitsForCalls(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("idle", purgatory.Config{Threshold: 1, TTL: time.Second, Trials: 2})
	trip(t, b)
	e.clk.Advance(time.Second)
	require.NoError(t, call(b, nil), "one trial of two")
	e.clk.Advance(time.Hour)
	assert.Equal(t, purgatory.HalfOpen, b.State())
	require.NoError(t, call(b, nil))
	assert.Equal(t, purgatory.Closed, b.State())
}

// Issue 16, item 12: an operator's Close of a half-open circuit is a state
// change, not a recovery: no trial ran. A recovery by trials is still
// reported, in every process.
func TestCloseOfHalfOpenIsNoRecovery(t *testing.T) {
	clk, fa, fb, rec := pair(t, store.NewMemory())
	recB := &recorder{}
	fb.AddListener(recB)
	cfg := purgatory.Config{Threshold: 1, TTL: time.Second}
	a, b := fa.Breaker("op", cfg), fb.Breaker("op", cfg)
	trip(t, a)
	clk.Advance(time.Second)
	require.Equal(t, purgatory.HalfOpen, a.State())
	require.Equal(t, purgatory.HalfOpen, b.State())
	rec.reset()
	recB.reset()
	a.Close()
	require.Equal(t, purgatory.Closed, a.State())
	require.Equal(t, purgatory.Closed, b.State())
	for _, r := range []*recorder{rec, recB} {
		assert.Empty(t, r.of(purgatory.EventRecovered), "closed by hand")
		assert.Len(t, r.of(purgatory.EventStateChanged), 1)
	}

	trip(t, a)
	clk.Advance(time.Second)
	rec.reset()
	recB.reset()
	require.NoError(t, call(b, nil))
	require.Equal(t, purgatory.Closed, a.State())
	for _, r := range []*recorder{rec, recB} {
		assert.Len(t, r.of(purgatory.EventRecovered), 1, "closed by its trial")
	}
}

// Issue 16, item 13: after Factory.Close, an open circuit's RetryAfter is
// still refreshed, and a breaker made after Close works on local state
// only: it neither follows nor moves the store.
func TestAfterFactoryClose(t *testing.T) {
	t.Run("RetryAfter", func(t *testing.T) {
		clk, fa, _, _ := pair(t, store.NewMemory())
		a := fa.Breaker("ra", purgatory.Config{Threshold: 1, TTL: 30 * time.Second})
		require.NoError(t, fa.Close())
		trip(t, a)
		clk.Advance(25 * time.Second)
		for range 3 { // the first rejection may still read the old figure
			err := call(a, nil)
			var oe *purgatory.OpenError
			require.ErrorAs(t, err, &oe)
			if oe.RetryAfter <= 5*time.Second+10*time.Millisecond {
				return
			}
			clk.Advance(10 * time.Millisecond)
		}
		t.Fatal("RetryAfter never refreshed after Factory.Close")
	})
	t.Run("NewBreakerIsLocal", func(t *testing.T) {
		_, fa, fb, _ := pair(t, store.NewMemory())
		cfg := purgatory.Config{Threshold: 1, TTL: time.Minute}
		require.NoError(t, fa.Close())
		a, b := fa.Breaker("local", cfg), fb.Breaker("local", cfg)
		trip(t, b)
		assert.Equal(t, purgatory.Closed, a.State(), "a breaker made after Close does not watch the store")
		b.Close()
		trip(t, a)
		assert.Equal(t, purgatory.Closed, b.State(), "nor does it write to it")
	})
}

// Issue 16, item 11: slow calls are measured without wrapping at 2^32 µs
// (71 minutes), and a SlowCall beyond what is measured is refused.
func TestSlowCallsLongerThanAnHour(t *testing.T) {
	for _, tc := range []struct {
		slow, took time.Duration
		isSlow     bool
	}{
		{2 * time.Hour, time.Hour, false},
		{time.Minute, 72 * time.Minute, true},
		{time.Minute, 5 * 24 * time.Hour, true},
		{7 * 24 * time.Hour, 7*24*time.Hour + time.Microsecond, true},
		{7 * 24 * time.Hour, 7 * 24 * time.Hour, false},
	} {
		e := newEnv(t)
		b := e.f.Breaker("slow", purgatory.Config{Threshold: 1, TTL: time.Second, SlowCall: tc.slow})
		require.NoError(t, b.Do(context.Background(), func(context.Context) error { e.clk.Advance(tc.took); return nil }))
		want := purgatory.Closed
		if tc.isSlow {
			want = purgatory.Open
		}
		assert.Equal(t, want, b.State(), "slow=%s, a call of %s", tc.slow, tc.took)
	}
	assert.PanicsWithValue(t, `purgatory: circuit "slower": slow call out of range: 168h0m0.000001s (at most 168h0m0s)`, func() {
		newEnv(t).f.Breaker("slower", purgatory.Config{SlowCall: 7*24*time.Hour + time.Microsecond})
	})
}
