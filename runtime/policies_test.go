package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// TestRateWindow plays a backend that fails 40% of calls, seen by two
// processes sharing a store: the rate policy opens the circuit, where a
// consecutive threshold of 5 never would.
func TestRateWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  purgatory.Config
		open bool
	}{
		{"rate 30% opens", purgatory.Config{FailureRate: 0.3, Window: 10 * time.Second, MinCalls: 20}, true},
		{"rate 50% does not", purgatory.Config{FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 20}, false},
		{"threshold 5 does not", purgatory.Config{Threshold: 5}, false},
		{"min calls not reached", purgatory.Config{FailureRate: 0.3, Window: 10 * time.Second, MinCalls: 1000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk, fa, fb, _ := pair(t, store.NewMemory())
			bs := []*purgatory.Breaker{fa.Breaker("rate", tc.cfg), fb.Breaker("rate", tc.cfg)}
			for i := range 100 {
				b := bs[i%2]
				err := error(nil)
				if i%5 < 2 { // 40%: fail, fail, ok, ok, ok
					err = errBoom
				}
				_ = call(b, err)
				if i%10 == 9 {
					clk.Advance(100 * time.Millisecond) // flushes
				}
			}
			clk.Advance(time.Second)
			want := purgatory.Closed
			if tc.open {
				want = purgatory.Open
			}
			assert.Equal(t, want, bs[0].State())
			assert.Equal(t, want, bs[1].State())
		})
	}
}

// TestRateWindowRolls: failures older than the window stop counting.
func TestRateWindowRolls(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("roll", purgatory.Config{FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 10})
	for range 9 {
		_ = call(b, errBoom)
	}
	e.clk.Advance(11 * time.Second) // flushed, then aged out
	assert.Equal(t, purgatory.Closed, b.State(), "9 calls is below min")
	for range 9 {
		_ = call(b, nil)
	}
	_ = call(b, errBoom)
	e.clk.Advance(time.Second)
	assert.Equal(t, purgatory.Closed, b.State(), "1 failure in 10 calls: the old failures rolled out")
	st := b.Status()
	assert.Equal(t, 10, st.Calls)
	assert.InDelta(t, 0.1, st.FailureRatio, 1e-9)
}

// TestRateExactlyAtThreshold: failures/calls == rate opens.
func TestRateExactlyAtThreshold(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("exact", purgatory.Config{FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 4})
	_ = call(b, nil)
	_ = call(b, nil)
	_ = call(b, errBoom)
	assert.Equal(t, purgatory.Closed, b.State())
	_ = call(b, errBoom) // 2 of 4: the local counts could trip it, flushed at once
	assert.Equal(t, purgatory.Open, b.State())
}

// TestSlowCalls: a call that takes longer than SlowCall is a failure, its
// result returned unchanged.
func TestSlowCalls(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("slow", purgatory.Config{Threshold: 2, SlowCall: time.Second})
	slow := func(ctx context.Context) error { e.clk.Advance(2 * time.Second); return nil }
	assert.NoError(t, b.Do(context.Background(), slow), "the slow call's own result")
	assert.NoError(t, b.Do(context.Background(), func(context.Context) error { return nil }))
	assert.Equal(t, purgatory.Closed, b.State(), "a fast success resets the count")
	require.NoError(t, b.Do(context.Background(), slow))
	require.NoError(t, b.Do(context.Background(), slow))
	assert.Equal(t, purgatory.Open, b.State())
	var slowErr *purgatory.SlowCallError
	failures := e.rec.of(purgatory.EventFailure)
	require.NotEmpty(t, failures)
	assert.ErrorAs(t, failures[0].Err, &slowErr)
}

// TestBackoff: each failed trial doubles the open period up to MaxTTL; a
// close resets it.
func TestBackoff(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("backoff", purgatory.Config{Threshold: 1, TTL: time.Second, MaxTTL: 5 * time.Second})
	trip(t, b)
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		e.clk.Advance(b.Status().RetryAfter)
		require.Equal(t, purgatory.HalfOpen, b.State())
		require.ErrorIs(t, call(b, errBoom), errBoom)
		assert.Equal(t, want, b.Status().RetryAfter)
	}
	e.clk.Advance(5 * time.Second)
	require.NoError(t, call(b, nil))
	trip(t, b)
	assert.Equal(t, time.Second, b.Status().RetryAfter, "back to the TTL once closed")
}

// TestIsolate: an isolated circuit rejects calls, saying so, through any
// number of TTLs, until it is closed; other factories on the store follow.
func TestIsolate(t *testing.T) {
	clk, fa, fb, _ := pair(t, store.NewMemory())
	a := fa.Breaker("iso", purgatory.Config{TTL: time.Second})
	b := fb.Breaker("iso", purgatory.Config{TTL: time.Second})
	a.Isolate()
	clk.Advance(24 * time.Hour)
	for _, br := range []*purgatory.Breaker{a, b} {
		assert.Equal(t, purgatory.Isolated, br.State())
		err := call(br, nil)
		var oe *purgatory.OpenError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, purgatory.Isolated, oe.State())
		assert.Contains(t, err.Error(), "isolated")
	}
	assert.Equal(t, "isolated", purgatory.Isolated.String())
	b.Close()
	assert.Equal(t, purgatory.Closed, a.State())
	assert.NoError(t, call(a, nil))
}

// TestStatus reads what a dashboard shows.
func TestStatus(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("status", purgatory.Config{Threshold: 2, TTL: 10 * time.Second})
	_ = call(b, errBoom)
	st := b.Status()
	assert.Equal(t, "status", st.Name)
	assert.Equal(t, 1, st.Failures)
	assert.True(t, st.OpenedAt.IsZero())
	_ = call(b, errBoom)
	opened := e.clk.Now()
	e.clk.Advance(3 * time.Second)
	st = b.Status()
	assert.Equal(t, purgatory.Open, st.State)
	assert.Equal(t, opened, st.OpenedAt)
	assert.Equal(t, 7*time.Second, st.RetryAfter)
	assert.Equal(t, 2, st.Config.Threshold)
	assert.Equal(t, []*purgatory.Breaker{b}, e.f.Breakers())
}
