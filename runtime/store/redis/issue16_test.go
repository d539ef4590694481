package redis

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// TestDoneContextClaim (issue 16, item 3): a call whose context is done
// already, arriving at a half-open circuit, must not leave the process
// rejecting every later call with no timer to end it: the next caller gets
// its trial.
func TestDoneContextClaim(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	f := purgatory.NewFactory(purgatory.WithStore(newStore(t, srv, testPrefix())), purgatory.WithClock(clk))
	br := f.Breaker("hungup", purgatory.Config{Threshold: 1, TTL: time.Second})
	ctx := context.Background()
	require.ErrorIs(t, br.Do(ctx, fail), errBoom)
	require.Eventually(t, func() bool { return br.State() == purgatory.Open }, 5*time.Second, time.Millisecond)
	clk.Advance(time.Second)
	require.Eventually(t, func() bool { return br.State() == purgatory.HalfOpen }, 5*time.Second, time.Millisecond)

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err := br.Allow(done)
	require.Error(t, err)
	tok, err := br.Allow(ctx)
	require.NoError(t, err, "the next caller gets the trial slot nobody holds")
	br.Done(ctx, tok, nil)
	require.Eventually(t, func() bool { return br.State() == purgatory.Closed }, 5*time.Second, time.Millisecond)
}
