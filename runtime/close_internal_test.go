package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// closeAsync runs f.Close in a goroutine; the channel is closed when it
// returned.
func closeAsync(f *Factory) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		_ = f.Close()
		close(done)
	}()
	return done
}

// advanceUntil advances clk by d until done is closed: Close arms its
// bound at a moment the test cannot see.
func advanceUntil(t *testing.T, clk *clocktest.Clock, d time.Duration, done <-chan struct{}) {
	t.Helper()
	deadline := time.After(30 * time.Second) // a bound for a broken build
	for {
		clk.Advance(d)
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatal("Close did not return")
		case <-time.After(time.Millisecond):
		}
	}
}

// TestCloseDeliversQueuedResults: a process that fails three calls and
// closes its factory at once (a command that exits, a rolling deploy)
// trips the circuit in the store: Close waits for the pusher to send what
// was queued (the README's two-process demo lost A's trip without it).
func TestCloseDeliversQueuedResults(t *testing.T) {
	st := newHeldStore()
	clk := clocktest.New(time.Unix(0, 0)) // never advanced: Close's bound never runs out
	f := NewFactory(WithStore(st), WithClock(clk))
	b := f.Breaker("x", Config{Threshold: 3, TTL: time.Hour})
	other := NewFactory(WithStore(st.Store), WithClock(clk)) // another process, on the same store
	t.Cleanup(func() { _ = other.Close() })
	ob := other.Breaker("x", Config{Threshold: 3, TTL: time.Hour})
	ctx := context.Background()
	for range 3 {
		require.ErrorIs(t, b.Do(ctx, fail), boom)
	}
	require.Equal(t, store.Failure, <-st.entered) // the pusher holds the first; two are queued
	closed := closeAsync(f)
	select {
	case <-closed:
		t.Fatal("Close returned while results were on their way to the store")
	case <-time.After(50 * time.Millisecond):
	}
	close(st.fgate)
	<-closed
	require.Equal(t, Open, ob.State(), "the three failures reached the store before Close returned")
	require.True(t, b.flags.has(flagDetached))
}

// TestCloseBoundedOnStuckStore: a store call that never ends holds Close
// at most closeWait (on the factory's clock).
func TestCloseBoundedOnStuckStore(t *testing.T) {
	st := newHeldStore()
	clk := clocktest.New(time.Unix(0, 0))
	f := NewFactory(WithStore(st), WithClock(clk))
	b := f.Breaker("x", Config{Threshold: 3, TTL: time.Hour})
	require.ErrorIs(t, b.Do(context.Background(), fail), boom)
	<-st.entered
	advanceUntil(t, clk, closeWait, closeAsync(f))
	require.True(t, b.flags.has(flagDetached))
	close(st.fgate)
}

// TestCloseFromListenerOnPusher: a listener that closes the factory when a
// circuit opens runs on that circuit's pusher, which Close waits for:
// the wait ends at closeWait, it does not deadlock.
func TestCloseFromListenerOnPusher(t *testing.T) {
	st := newHeldStore()
	clk := clocktest.New(time.Unix(0, 0))
	var f *Factory
	closed := make(chan (<-chan struct{}), 1)
	f = NewFactory(WithStore(st), WithClock(clk), WithListener(ListenerFunc(func(e Event) {
		if e.Kind == EventStateChanged && e.To == Open {
			done := make(chan struct{})
			closed <- done
			_ = f.Close() // on the pusher's goroutine
			close(done)
		}
	})))
	b := f.Breaker("x", Config{Threshold: 1, TTL: time.Hour})
	require.ErrorIs(t, b.Do(context.Background(), fail), boom)
	<-st.entered                                               // the pusher holds the failure that trips the circuit
	require.ErrorIs(t, b.Do(context.Background(), fail), boom) // queued behind it: Close waits for it
	close(st.fgate)
	advanceUntil(t, clk, closeWait, <-closed)
}
