package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// TestStress: 8 goroutines on each of 2 factories (two stores, two
// clients) make 10k calls each, one in three failing, while the circuit
// trips, expires and recovers over and over: they go on until it has
// opened three times at least and rejected calls, however fast the calls
// run. Afterwards both views agree with the server's and no trial slot is
// leaked.
func TestStress(t *testing.T) {
	srv := needRedis(t)
	const goroutines = 8
	calls := 10_000
	if testing.Short() {
		calls = 1_000
	}
	prefix := testPrefix()
	// A trial slot never given back would be freed by the end of its
	// lease, TTL + the clock skew bound: a minute here, past the wait
	// below, so that a leak fails the test.
	var opens atomic.Int64 // trips seen, by both factories
	mk := func() *purgatory.Factory {
		st := New(newClient(t, srv), WithPrefix(prefix), WithTimeout(5*time.Second))
		t.Cleanup(func() { _ = st.Close() })
		return purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClockSkew(time.Minute),
			purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
				if e.Kind == purgatory.EventStateChanged && e.To == purgatory.Open {
					opens.Add(1)
				}
			})))
	}
	fa, fb := mk(), mk()
	cfg := purgatory.Config{Threshold: 5, TTL: time.Millisecond, Trials: 2}
	bs := []*purgatory.Breaker{fa.Breaker("stress", cfg), fb.Breaker("stress", cfg)}
	ctx := context.Background()

	var made, ran, rejected atomic.Int64
	var wg sync.WaitGroup
	for i, b := range bs {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(g)))
				for n := 0; n < calls || opens.Load() < 6 || rejected.Load() == 0; n++ {
					made.Add(1)
					// Consecutive failures: 5 in a row at one in three
					// trip the circuit often enough.
					failing := rng.IntN(3) == 0
					err := b.Do(ctx, func(context.Context) error {
						ran.Add(1)
						if failing {
							return errBoom
						}
						return nil
					})
					if errors.Is(err, purgatory.ErrOpen) {
						rejected.Add(1)
						time.Sleep(50 * time.Microsecond) // as a caller would back off
					}
				}
			}()
		}
	}
	wg.Wait()
	assert.Equal(t, made.Load(), ran.Load()+rejected.Load())

	// Quiescent soon: the pushers send the last results (trials' among
	// them: a slot is given back once its result reaches Redis, after the
	// call returned), an open circuit expires to half-open by itself, then
	// nothing moves. Both views must settle on the server's record.
	raw := newClient(t, srv)
	key := prefix + "{stress}:state"
	var h map[string]string
	require.Eventually(t, func() bool {
		var err error
		h, err = raw.HGetAll(ctx, key).Result()
		require.NoError(t, err)
		return h["state"] != "open" && h["claimed"] == "0" && bs[0].State().String() == h["state"] && bs[1].State().String() == h["state"]
	}, 10*time.Second, 5*time.Millisecond, "views and server disagree, or a trial slot was never given back")
	failures, err := strconv.Atoi(h["failures"])
	require.NoError(t, err)
	assert.Less(t, failures, cfg.Threshold)
	gen, err := strconv.Atoi(h["gen"])
	require.NoError(t, err)
	t.Logf("%d calls ran, %d rejected, %d state changes on the server", ran.Load(), rejected.Load(), gen-1)
	// Six opens seen by two factories: three trips at least, each three
	// state changes (open, half-open, then closed or open).
	assert.Greater(t, gen, 3, "the circuit should have changed state several times")
}

// TestFailuresAddUp: concurrent failures from two factories are all
// counted (no lost update, as a read-modify-write client would have).
func TestFailuresAddUp(t *testing.T) {
	srv := needRedis(t)
	const goroutines, calls = 8, 500
	prefix := testPrefix()
	fa, fb, _, _ := twoFactories(t, srv, prefix, nil, WithTimeout(5*time.Second))
	cfg := purgatory.Config{Threshold: 1_000_000, TTL: time.Minute} // the largest threshold a record may hold
	bs := []*purgatory.Breaker{fa.Breaker("adds", cfg), fb.Breaker("adds", cfg)}
	var wg sync.WaitGroup
	for _, b := range bs {
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range calls {
					_ = b.Do(context.Background(), fail)
				}
			}()
		}
	}
	wg.Wait()
	raw := newClient(t, srv)
	// Each process's pusher coalesces the failures that accumulated: none
	// is lost or counted twice.
	var got string
	waitFor(t, func() bool {
		var err error
		got, err = raw.HGet(context.Background(), prefix+"{adds}:state", "failures").Result()
		require.NoError(t, err)
		return got == strconv.Itoa(2*goroutines*calls)
	}, "every failure is counted once")
	assert.Equal(t, strconv.Itoa(2*goroutines*calls), got)
}
