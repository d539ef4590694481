package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// TestRateAcrossProcesses: a backend failing 40% of calls, seen by two
// processes sharing Redis, opens a rate circuit (30% over the window) in
// both, where a consecutive threshold of 5 never opens. The window is
// fleet-wide: each process merges its counts into the record.
func TestRateAcrossProcesses(t *testing.T) {
	srv := needRedis(t)
	for _, tc := range []struct {
		name string
		cfg  purgatory.Config
		open bool
	}{
		{"rate 30%", purgatory.Config{FailureRate: 0.3, Window: 10 * time.Second, MinCalls: 40, TTL: time.Hour}, true},
		{"threshold 5", purgatory.Config{Threshold: 5, TTL: time.Hour}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix()
			clk := clocktest.New(time.Unix(1_700_000_000, 0))
			fa, fb, _, _ := twoFactories(t, srv, prefix, clk)
			bs := []*purgatory.Breaker{fa.Breaker("search", tc.cfg), fb.Breaker("search", tc.cfg)}
			waitSubscribed(t, srv, prefix, 2)
			ctx := context.Background()
			for i := range 60 {
				b := bs[i%2]
				fn := succeed
				if i/2%5 < 2 { // each process: fail, fail, ok, ok, ok
					fn = fail
				}
				// No waiting for the store's answers: a success resets the
				// failures before it that are still on their way, behind
				// them, so each process's history reaches Redis as it ran.
				_ = b.Do(ctx, fn)
				if i%10 == 9 {
					clk.Advance(time.Second) // each process flushes its counts
				}
			}
			// 60 calls, 24 failed: 40% of the fleet's calls; each process
			// alone saw only 30 calls, under MinCalls.
			if tc.open {
				for i, b := range bs {
					require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 10*time.Second, time.Millisecond,
						"process %d: the fleet-wide rate did not open the circuit", i)
				}
				return
			}
			// Never five failures in a row, and each process ended with
			// successes: once the last results reach Redis, nothing is
			// counted (a failure left counted would add up with later ones).
			for i, b := range bs {
				require.Eventually(t, func() bool { s := b.Status(); return s.State == purgatory.Closed && s.Failures == 0 },
					10*time.Second, time.Millisecond, "process %d: %+v", i, b.Status())
			}
			for _, b := range bs {
				assert.Equal(t, purgatory.Closed, b.State(), "never five failures in a row")
			}
		})
	}
}

// TestFrozenProcessStaysInStep: while its connection to Redis is frozen, a
// process makes local transitions; afterwards it pushes its last state and
// follows the others again: another process's Open reaches it.
func TestFrozenProcessStaysInStep(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	p := newProxy(t, srv.addr())
	c := goredis.NewClient(&goredis.Options{Addr: p.addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	far := New(c, WithPrefix(prefix), WithTimeout(100*time.Millisecond))
	far.health = 100 * time.Millisecond
	t.Cleanup(func() { _ = far.Close() })
	ea := &events{}
	fa := purgatory.NewFactory(purgatory.WithStore(far), purgatory.WithClock(clk), purgatory.WithListener(ea))
	fb := purgatory.NewFactory(purgatory.WithStore(newStore(t, srv, prefix)), purgatory.WithClock(clk))
	cfg := purgatory.Config{Threshold: 1, TTL: time.Hour}
	a, b := fa.Breaker("frozen", cfg), fb.Breaker("frozen", cfg)
	waitSubscribed(t, srv, prefix, 2)
	ctx := context.Background()

	p.blocked.Store(true)
	for range 4 { // seven local transitions: open, close, open, ..., open
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
		waitFor(t, func() bool { return a.State() == purgatory.Open }, "the local trip")
		a.Close()
	}
	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	a.Close()
	require.NotEmpty(t, ea.of(purgatory.EventStoreError))
	raw := newClient(t, srv)
	key := prefix + "{frozen}:state"
	before, err := raw.HGet(ctx, key, "seq").Uint64()
	require.NoError(t, err)
	p.blocked.Store(false)

	// A's state is pushed when the store answers again (the record did
	// not change meanwhile): closed. Both were closed all along: wait for
	// the push itself (the record moves on), or b's Open below could come
	// while a still waits to push (its first try after the block may time
	// out on a loaded machine, and clk stands still after this loop).
	require.Eventually(t, func() bool {
		clk.Advance(time.Second) // the retry runs in Advance
		seq, err := raw.HGet(ctx, key, "seq").Uint64()
		return err == nil && seq > before && b.State() == purgatory.Closed && a.State() == purgatory.Closed
	}, 10*time.Second, 10*time.Millisecond, "a's state is pushed")
	b.Open()
	require.Eventually(t, func() bool { return a.State() == purgatory.Open }, 10*time.Second, time.Millisecond,
		"the other process's Open did not reach the process that saw a store fault")
	b.Close()
	require.Eventually(t, func() bool { return a.State() == purgatory.Closed }, 10*time.Second, time.Millisecond)
}

// TestTimeoutsReachRedis: calls that fail because their deadline passed
// report to Done with a context that is done; the failures still reach
// Redis, so the other process opens too, and no store error is blamed on
// a healthy Redis.
func TestTimeoutsReachRedis(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	fa, fb, ea, _ := twoFactories(t, srv, prefix, nil)
	cfg := purgatory.Config{Threshold: 3, TTL: time.Hour}
	a, b := fa.Breaker("deadline", cfg), fb.Breaker("deadline", cfg)
	waitSubscribed(t, srv, prefix, 2)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		<-ctx.Done()
		err := a.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip")
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 10*time.Second, time.Millisecond,
		"the timeouts did not reach Redis")
	assert.Empty(t, ea.of(purgatory.EventStoreError))
}
