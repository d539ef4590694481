package runtime

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStress hammers one breaker from many goroutines with successes,
// failures, cancellations and manual opens and closes, on the real clock
// with a short TTL, and checks the invariants that must hold at every
// moment: never more than Trials calls admitted at once in one half-open
// generation, and no state change along an edge the state machine lacks.
func TestStress(t *testing.T) {
	const (
		workers = 16
		calls   = 3000
		trials  = 2
	)
	var (
		mu       sync.Mutex
		illegal  []Event
		changes  atomic.Int64
		inflight sync.Map // generation -> *atomic.Int32
		maxSeen  atomic.Int32
		// trialCalls counts calls admitted while half-open.
		trialCalls atomic.Int64
	)
	f := NewFactory(WithListener(ListenerFunc(func(e Event) {
		if e.Kind != EventStateChanged {
			return
		}
		changes.Add(1)
		// Every edge is legal for Open() and Close() except closed to
		// half-open, which only the timer's open to half-open provides.
		if e.From == e.To || e.From == Closed && e.To == HalfOpen {
			mu.Lock()
			illegal = append(illegal, e)
			mu.Unlock()
		}
	})))
	b := f.Breaker("stress", Config{Threshold: 3, TTL: time.Millisecond, Trials: trials})
	errFail := errors.New("fail")

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for range calls {
				// Manual opens and closes are rare enough (about one per
				// TTL) to let the timer move the circuit to half-open.
				switch rng.IntN(2000) {
				case 0:
					b.Open()
					continue
				case 1:
					b.Close()
					continue
				}
				r := rng.IntN(100)
				ctx := context.Background()
				tok, err := b.Allow(ctx)
				if err != nil {
					require.ErrorIs(t, err, ErrOpen)
					continue
				}
				var n *atomic.Int32
				if State(uint64(tok)&stateMask) == HalfOpen {
					v, _ := inflight.LoadOrStore(uint32(uint64(tok)>>genShift), new(atomic.Int32))
					n = v.(*atomic.Int32)
					trialCalls.Add(1)
					for c := n.Add(1); ; {
						m := maxSeen.Load()
						if c <= m || maxSeen.CompareAndSwap(m, c) {
							break
						}
					}
				}
				var result error
				switch {
				case r < 40:
					result = errFail
				case r < 45:
					c, cancel := context.WithCancel(ctx)
					cancel()
					ctx, result = c, context.Canceled
				}
				if r >= 90 { // a slow call, so that calls overlap transitions
					time.Sleep(time.Duration(rng.IntN(100)) * time.Microsecond)
				}
				if n != nil {
					n.Add(-1)
				}
				b.Done(ctx, tok, result)
			}
		}()
	}
	wg.Wait()
	assert.Empty(t, illegal, "illegal state changes")
	assert.LessOrEqual(t, maxSeen.Load(), int32(trials), "more trial calls at once than Trials")
	assert.Positive(t, changes.Load(), "the stress run never changed state: it tests nothing")
	assert.Positive(t, trialCalls.Load(), "no call was admitted half-open: the trial limit went untested")

	// The view and the store agree once the dust settles.
	b.mu.Lock()
	snap := b.snap
	b.mu.Unlock()
	_, stored, err := f.store.Register(context.Background(), "stress", settingsOf(b.cfg))
	require.NoError(t, err)
	assert.Equal(t, stored.Gen, snap.Gen)
	assert.Equal(t, stored.State, snap.State)
	assert.Equal(t, word(snap), b.view.Load())
}
