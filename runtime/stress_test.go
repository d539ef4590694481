package runtime_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// TestStress drives one circuit shared by two factories through every
// state, round after round, on a fake clock, while many goroutines hammer
// both factories' breakers with successes, failures, cancellations, hanging
// trials, store blips and manual opens and closes. The clock only moves
// between rounds, so every round reaches the states it asserts about
// whatever the scheduling: each round trips the circuit, lets its open
// period end, and checks that the half-open period admits at least one and
// never more than Trials calls at once, and that no circuit stays stuck.
// -race finds the data races.
func TestStress(t *testing.T) {
	const (
		workers = 8
		rounds  = 40
		trials  = 2
		ttl     = time.Second
	)
	st := newCtxStore()
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	var illegal atomic.Int64
	check := purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind == purgatory.EventStateChanged && (e.From == e.To || e.From == purgatory.Closed && e.To == purgatory.HalfOpen) {
			illegal.Add(1)
		}
	})
	fa := purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk), purgatory.WithListener(check))
	fb := purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk), purgatory.WithListener(check))
	cfg := purgatory.Config{Threshold: 3, TTL: ttl, Trials: trials}
	bs := []*purgatory.Breaker{fa.Breaker("stress", cfg), fb.Breaker("stress", cfg)}

	var late []func() // trials admitted during a blip, reported after the others
	for round := range rounds {
		// Closed: trip it from every goroutine at once.
		bs[0].Close()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := bs[w%2]
				for i := range 50 {
					switch i % 5 {
					case 0:
						if i == 25 && w == 0 {
							b.Open() // an operator, meanwhile
						}
						_ = call(b, nil)
					case 1:
						ctx, cancel := context.WithCancel(context.Background())
						cancel()
						_ = b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
					default:
						_ = call(b, errBoom)
					}
				}
			}()
		}
		wg.Wait()
		require.Equal(t, purgatory.Open, bs[0].State(), "round %d: the failures tripped it", round)
		require.Equal(t, purgatory.Open, bs[1].State(), "round %d: in both factories", round)

		// Half-open: every goroutine tries at once; count the admitted calls
		// in flight. Some rounds blip the store, some leave trials hanging.
		clk.Advance(ttl)
		var inflight, most, admitted, attempted atomic.Int32
		release := make(chan struct{})
		blip := round%3 == 1
		hang := round%4 == 2
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := bs[w%2]
				tok, err := b.Allow(context.Background())
				attempted.Add(1)
				if err != nil {
					return
				}
				n := inflight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				admitted.Add(1)
				<-release
				inflight.Add(-1)
				if !hang {
					b.Done(context.Background(), tok, nil)
				}
			}()
		}
		require.Eventually(t, func() bool { return attempted.Load() == workers }, 10*time.Second, time.Millisecond)
		require.GreaterOrEqual(t, admitted.Load(), int32(1), "round %d: no trial admitted while half-open", round)
		if blip {
			// With the store down, each factory may grant only what its
			// last snapshot shows free: never more than Trials in all.
			st.setDown(true)
			n := inflight.Load()
			for _, b := range bs {
				if tok, err := b.Allow(context.Background()); err == nil {
					n++
					late = append(late, func() { b.Done(context.Background(), tok, nil) })
				}
			}
			assert.LessOrEqual(t, n, int32(trials), "round %d: extra trials during a store blip", round)
			st.setDown(false)
		}
		close(release)
		wg.Wait()
		for _, done := range late {
			done()
		}
		late = late[:0]
		assert.LessOrEqual(t, most.Load(), int32(trials), "round %d: more than Trials calls at once", round)
		if hang {
			// The hanging trials' lease runs out: re-opened, then half-open.
			clk.Advance(ttl)
			clk.Advance(10 * ttl)
		}
		clk.Advance(2 * time.Second) // store back-off and reconciliation
		for i, b := range bs {
			if b.State() != purgatory.Closed {
				require.NoError(t, call(b, nil), "round %d: factory %d stuck %s", round, i, b.State())
				require.NoError(t, call(b, nil))
			}
			assert.Equal(t, purgatory.Closed, b.State(), "round %d: factory %d did not recover", round, i)
		}
	}
	assert.Zero(t, illegal.Load(), "state changes along edges the state machine lacks")
}

// TestCountsExact makes N calls of each outcome from many goroutines and
// reads exactly N of each.
func TestCountsExact(t *testing.T) {
	const workers, n = 8, 1000
	f := purgatory.NewFactory()
	f.CountCalls()
	b := f.Breaker("counts", purgatory.Config{Threshold: 1_000_000, Exclude: []func(error) bool{purgatory.Is(errNotFound)}})
	o := f.Breaker("counts-open", purgatory.Config{})
	o.Isolate()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / workers {
				_ = call(b, nil)
				_ = call(b, errBoom)
				_ = call(b, errNotFound)
				_ = b.Do(cancelled, func(ctx context.Context) error { return ctx.Err() })
				_ = call(o, nil)
			}
		}()
	}
	wg.Wait()
	got := b.Status().Counts
	assert.Equal(t, purgatory.Counts{Success: n, Failure: n, Excluded: n, Ignored: n}, got)
	assert.Equal(t, uint64(n), o.Status().Counts.Rejected)
}
