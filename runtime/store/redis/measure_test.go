package redis

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// TestOneProcessFailing measures how a backend that fails in one process
// only (A) while two others (B, C) reach it trips the shared circuit: the
// three call in turn, and the test counts A's failed calls until A
// rejects. With a consecutive threshold, every success anywhere resets the
// shared count, so the trip depends on how B and C's resets interleave
// with A's failures: the figures are logged, not asserted. With a failure
// rate over a shared window, A's failures count whatever B and C do, and
// the circuit opens once the window holds MinCalls calls at the rate.
func TestOneProcessFailing(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	const runs, limit = 5, 3000
	for _, tc := range []struct {
		name string
		cfg  purgatory.Config
	}{
		{"threshold5", purgatory.Config{Threshold: 5, TTL: time.Hour}},
		{"rate30%", purgatory.Config{FailureRate: 0.3, Window: 10 * time.Second, MinCalls: 20, TTL: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed []int
			for range runs {
				prefix := testPrefix()
				bs := make([]*purgatory.Breaker, 3)
				for i := range bs {
					st := newStore(t, srv, prefix)
					bs[i] = purgatory.NewFactory(purgatory.WithStore(st)).Breaker("one", tc.cfg)
				}
				waitSubscribed(t, srv, prefix, 3)
				n := 0
				for n < limit {
					err := bs[0].Do(ctx, fail)
					if errors.Is(err, purgatory.ErrOpen) {
						break
					}
					n++
					_ = bs[1].Do(ctx, succeed)
					_ = bs[2].Do(ctx, succeed)
				}
				failed = append(failed, n)
				if tc.cfg.FailureRate > 0 {
					// Results reach Redis off the callers' path: the trip
					// may come after the loop ran out.
					waitFor(t, func() bool { return bs[0].State() == purgatory.Open }, "the rate circuit opens")
				}
			}
			slices.Sort(failed)
			t.Logf("%s: A's failed calls before the trip, %d runs (limit %d): %v, median %d",
				tc.name, runs, limit, failed, failed[len(failed)/2])
		})
	}
}
