package redis

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// TestMixedVersionFleet (issue 16, item 1): a threshold-only breaker whose
// record in Redis was registered with a failure rate (a rollback after a
// deploy that added rate=) adopts the record's settings, reports the
// conflict, and counts its calls without panicking.
func TestMixedVersionFleet(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	fa, fb, ea, _ := twoFactories(t, srv, testPrefix(), clk)
	fb.Breaker("mixed", purgatory.Config{FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 4, TTL: time.Hour})
	a := fa.Breaker("mixed", purgatory.Config{Threshold: 5, TTL: time.Hour})
	assert.NotEmpty(t, ea.of(purgatory.EventConfigConflict))
	ctx := context.Background()
	require.NotPanics(t, func() {
		_ = a.Do(ctx, succeed)
		_ = a.Do(ctx, succeed)
		_ = a.Do(ctx, fail)
		_ = a.Do(ctx, fail)
	})
	// Results reach Redis off the caller's path: the trip is one round trip later.
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "2 of 4 calls failed: the record's rate opens it")
}
