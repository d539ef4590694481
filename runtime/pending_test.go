package runtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// gatedStore is a memory store that may block, as Redis may: it is not
// store.Immediate, so results reach it through the pusher, and its Failure
// waits for the gate.
type gatedStore struct {
	store.Store
	gate chan struct{}
}

func (s *gatedStore) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	<-s.gate
	return s.Store.Failure(ctx, op)
}

// TestQueuedFailureThenSuccessResets: a success that comes while this
// process's failure is still on its way to the store must reset it. Today
// the success sees no failure pending (the store has not answered yet),
// sends nothing, and the failure stays counted: consecutive failures add
// up across successes (redis TestRateAcrossProcesses/threshold_5 opens now
// and then under -race, and TestStress's trips at 10 % failures come from
// it). It fails without the skip.
func TestQueuedFailureThenSuccessResets(t *testing.T) {
	t.Skip("known defect, not fixed yet: a success that comes before the store's answer to this process's failure does not reset it (see the closing note of issue 16); a fix that keeps pendingBit while a failure is queued made this pass but left TestStress's trial slots unreturned, not understood in time")
	m := store.NewMemory()
	st := &gatedStore{Store: m, gate: make(chan struct{})}
	f := purgatory.NewFactory(purgatory.WithStore(st))
	t.Cleanup(func() { _ = f.Close() })
	cfg := purgatory.Config{Threshold: 2, TTL: time.Hour}
	b := f.Breaker("x", cfg)
	ctx := context.Background()
	boom := errors.New("boom")
	require.ErrorIs(t, b.Do(ctx, func(context.Context) error { return boom }), boom) // queued: the store waits
	require.NoError(t, b.Do(ctx, func(context.Context) error { return nil }))        // must reset behind it
	close(st.gate)
	set := store.Settings{Threshold: 2, TTL: time.Hour, Trials: 1}
	require.Eventually(t, func() bool {
		_, snap, err := m.Register(ctx, "x", set)
		return err == nil && snap.Seq >= 3 // registered, failed, reset
	}, 5*time.Second, time.Millisecond, "the failure and the reset reach the store")
	_, snap, err := m.Register(ctx, "x", set)
	require.NoError(t, err)
	require.Zero(t, snap.Failures, "the success after the failure reset the count")
}
