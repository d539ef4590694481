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
