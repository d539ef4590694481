package runtime_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// gatedStore is a memory store that may block, as Redis may: it is not
// store.Immediate, so results reach it through the pusher, and its Failure
// waits for the gate. It counts the Failure and Success calls it answered,
// and holds back what it announces to its watchers while held is set (a
// pub/sub message still on its way), until release.
type gatedStore struct {
	store.Store
	gate          chan struct{}
	fails, resets atomic.Int32
	mu            sync.Mutex
	held          bool
	pending       []func()
}

func newGatedStore() (*gatedStore, *store.Memory) {
	m := store.NewMemory()
	return &gatedStore{Store: m, gate: make(chan struct{})}, m
}

func (s *gatedStore) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	<-s.gate
	defer s.fails.Add(1)
	return s.Store.Failure(ctx, op)
}

func (s *gatedStore) Success(ctx context.Context, op store.Op) (store.Snapshot, error) {
	defer s.resets.Add(1)
	return s.Store.Success(ctx, op)
}

func (s *gatedStore) Watch(name string, fn func(store.Snapshot)) (stop func()) {
	return s.Store.Watch(name, func(snap store.Snapshot) {
		s.mu.Lock()
		if s.held {
			s.pending = append(s.pending, func() { fn(snap) })
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		fn(snap)
	})
}

func (s *gatedStore) hold() {
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
}

// release delivers what was held back, in order, and stops holding.
func (s *gatedStore) release() {
	s.mu.Lock()
	s.held = false
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, deliver := range pending {
		deliver()
	}
}

// record returns the circuit's record in m.
func record(t *testing.T, m *store.Memory, name string, cfg purgatory.Config) store.Snapshot {
	t.Helper()
	_, snap, err := m.Register(context.Background(), name, store.Settings{Threshold: cfg.Threshold, TTL: cfg.TTL, Trials: 1})
	require.NoError(t, err)
	return snap
}

var errQueued = errors.New("boom")

func failing(context.Context) error    { return errQueued }
func succeeding(context.Context) error { return nil }

// TestQueuedFailureThenSuccessResets: a success that comes while this
// process's failure is still on its way to the store (the store has not
// answered, so it counts no failure yet) must reset it, behind it.
// Otherwise consecutive failures add up across successes.
func TestQueuedFailureThenSuccessResets(t *testing.T) {
	st, m := newGatedStore()
	f := purgatory.NewFactory(purgatory.WithStore(st))
	t.Cleanup(func() { _ = f.Close() })
	cfg := purgatory.Config{Threshold: 2, TTL: time.Hour}
	b := f.Breaker("x", cfg)
	ctx := context.Background()
	require.ErrorIs(t, b.Do(ctx, failing), errQueued) // queued: the store waits
	require.NoError(t, b.Do(ctx, succeeding))         // must reset behind it
	close(st.gate)
	require.Eventually(t, func() bool { return st.resets.Load() == 1 }, 30*time.Second, time.Millisecond,
		"the success after the queued failure sends a reset")
	snap := record(t, m, "x", cfg)
	require.Equal(t, int32(1), st.fails.Load())
	require.Equal(t, uint64(3), snap.Seq, "registered, failed, reset")
	require.Zero(t, snap.Failures, "the success after the failure reset the count")
}

// TestQueuedFailureSuccessFailureStaysClosed: failure, success, failure
// with a threshold of 2 is never two failures in a row, however the
// pusher batches them while the store waits.
func TestQueuedFailureSuccessFailureStaysClosed(t *testing.T) {
	st, m := newGatedStore()
	f := purgatory.NewFactory(purgatory.WithStore(st))
	t.Cleanup(func() { _ = f.Close() })
	cfg := purgatory.Config{Threshold: 2, TTL: time.Hour}
	b := f.Breaker("x", cfg)
	ctx := context.Background()
	require.ErrorIs(t, b.Do(ctx, failing), errQueued)
	require.NoError(t, b.Do(ctx, succeeding))
	require.ErrorIs(t, b.Do(ctx, failing), errQueued)
	close(st.gate)
	// The pusher sends failure, reset, failure in order: once the second
	// failure is answered, everything was.
	require.Eventually(t, func() bool { return st.fails.Load() == 2 }, 30*time.Second, time.Millisecond)
	snap := record(t, m, "x", cfg)
	require.Equal(t, store.Closed, snap.State, "never two failures in a row")
	require.Equal(t, 1, snap.Failures)
	require.Equal(t, int32(1), st.resets.Load())
	require.Eventually(t, func() bool { s := b.Status(); return s.State == purgatory.Closed && s.Failures == 1 },
		30*time.Second, time.Millisecond, "the breaker adopts the store's answers")
}

// TestQueuedFailureAcrossTrip: this process's failure is queued in
// generation 1 while another process trips the circuit, closes it and
// fails once in generation 3. A success of a call admitted in generation
// 1 resets nothing of generation 3: it is dropped when this process has
// seen the trip, and sent behind the failure, which the store ignores as
// it does the failure, when it has not (the store's message is on its
// way). Nor does the failure still queued in generation 1 make a success
// of generation 3 send a reset.
func TestQueuedFailureAcrossTrip(t *testing.T) {
	for _, seen := range []bool{true, false} {
		name := "trip seen"
		if !seen {
			name = "trip not seen yet"
		}
		t.Run(name, func(t *testing.T) {
			st, m := newGatedStore()
			fa := purgatory.NewFactory(purgatory.WithStore(st)) // this process
			fo := purgatory.NewFactory(purgatory.WithStore(m))  // another one
			t.Cleanup(func() { _ = fa.Close(); _ = fo.Close() })
			cfg := purgatory.Config{Threshold: 3, TTL: time.Hour}
			a, o := fa.Breaker("x", cfg), fo.Breaker("x", cfg)
			ctx := context.Background()

			t1, err := a.Allow(ctx)
			require.NoError(t, err)
			t2, err := a.Allow(ctx)
			require.NoError(t, err)
			if !seen {
				st.hold()
			}
			a.Done(ctx, t1, errQueued) // queued in generation 1: the store waits
			o.Open()                   // generation 2
			o.Close()                  // generation 3
			if seen {
				require.Equal(t, purgatory.Closed, a.State())
				require.Zero(t, a.Status().Failures)
				a.Done(ctx, t2, nil)                      // of generation 1: dropped
				require.NoError(t, a.Do(ctx, succeeding)) // of generation 3, nothing to reset
			}
			require.ErrorIs(t, o.Do(ctx, failing), errQueued)
			if !seen {
				a.Done(ctx, t2, nil) // of generation 1, as far as this process knows: sent
			}
			close(st.gate)
			st.release()
			require.Equal(t, 1, a.Status().Failures, "this process follows the other")
			require.ErrorIs(t, a.Do(ctx, failing), errQueued) // of generation 3, behind the rest
			// The pusher sends in order: once this failure is answered,
			// everything this process queued before it was.
			require.Eventually(t, func() bool { return st.fails.Load() == 2 }, 30*time.Second, time.Millisecond)

			snap := record(t, m, "x", cfg)
			require.Equal(t, store.Closed, snap.State)
			require.Equal(t, uint64(3), snap.Gen)
			require.Equal(t, 2, snap.Failures, "the other's failure and this one's: generation 1 reset nothing")
			if seen {
				require.Zero(t, st.resets.Load(), "no reset was owed in generation 3")
			} else {
				require.Equal(t, int32(1), st.resets.Load(), "generation 1's success was sent behind its failure")
			}
		})
	}
}
