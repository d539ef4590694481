package runtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// TestStatusTransitions checks that a breaker counts its own state changes,
// and that a circuit removed and registered again starts from zero however
// the removed breaker carries on.
func TestStatusTransitions(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	fail := func(context.Context) error { return errors.New("down") }

	b := f.Breaker("host", purgatory.Config{Threshold: 1, TTL: time.Second})
	require.Equal(t, purgatory.Transitions{}, b.Status().Transitions)
	require.Error(t, b.Do(context.Background(), fail)) // closed -> open
	clock.Advance(time.Second)                         // open -> half-open
	require.Error(t, b.Do(context.Background(), fail)) // half-open -> open
	b.Isolate()                                        // open -> isolated
	var want purgatory.Transitions
	want[purgatory.Closed][purgatory.Open] = 1
	want[purgatory.Open][purgatory.HalfOpen] = 1
	want[purgatory.HalfOpen][purgatory.Open] = 1
	want[purgatory.Open][purgatory.Isolated] = 1
	require.Equal(t, want, b.Status().Transitions)

	require.True(t, f.Remove("host"))
	b.Close() // the removed breaker: isolated -> closed
	again := f.Breaker("host", purgatory.Config{Threshold: 1, TTL: time.Second})
	require.Equal(t, purgatory.Transitions{}, again.Status().Transitions)
	want[purgatory.Isolated][purgatory.Closed] = 1
	require.Equal(t, want, b.Status().Transitions)
}

// TestEventBreaker checks that every event names its breaker, the removed
// one included, so that a listener can read a removed circuit's last
// counts.
func TestEventBreaker(t *testing.T) {
	var got []purgatory.Event
	f := purgatory.NewFactory(purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) { got = append(got, e) })))
	t.Cleanup(func() { _ = f.Close() })
	b := f.Breaker("host", purgatory.Config{Threshold: 1})
	require.Error(t, b.Do(context.Background(), func(context.Context) error { return errors.New("down") }))
	require.ErrorIs(t, b.Do(context.Background(), func(context.Context) error { return nil }), purgatory.ErrOpen)
	require.True(t, f.Remove("host"))
	var kinds []purgatory.EventKind
	for _, e := range got {
		require.Same(t, b, e.Breaker, e.Kind.String())
		kinds = append(kinds, e.Kind)
	}
	require.ElementsMatch(t, []purgatory.EventKind{purgatory.EventCreated, purgatory.EventFailure, purgatory.EventStateChanged,
		purgatory.EventRejected, purgatory.EventRemoved}, kinds)
	require.Equal(t, uint64(1), got[len(got)-1].Breaker.Status().Counts.Failure)
}
