package runtime

import (
	"context"
	goruntime "runtime"
	"sync"
	"testing"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// slowMemory is a Memory that is not store.Immediate (results go through
// the pusher), yielding inside each call so that results queue up.
type slowMemory struct{ store.Store }

func (s slowMemory) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	goruntime.Gosched()
	return s.Store.Failure(ctx, op)
}

func (s slowMemory) Success(ctx context.Context, op store.Op) (store.Snapshot, error) {
	goruntime.Gosched()
	return s.Store.Success(ctx, op)
}

// Review stress: failures and successes from many goroutines, then one
// success once the pusher is idle: the store and the view count nothing,
// and pendingBit is gone (successes are back on their fast path).
func TestPendingEndsAfterConcurrentMix(t *testing.T) {
	f := NewFactory(WithStore(slowMemory{store.NewMemory()}))
	t.Cleanup(func() { _ = f.Close() })
	b := f.Breaker("x", Config{Threshold: 1_000_000})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				if (i*7+w)%3 == 0 {
					_ = b.Do(ctx, fail)
				} else {
					_ = b.Do(ctx, ok)
				}
			}
		}()
	}
	wg.Wait()
	idle := func() {
		for b.link.queued() {
			goruntime.Gosched()
		}
	}
	idle()
	if err := b.Do(ctx, ok); err != nil {
		t.Fatal(err)
	}
	idle()
	b.mu.Lock()
	s := b.snap
	b.mu.Unlock()
	if s.State != Closed || s.Failures != 0 {
		t.Fatalf("after a last success: %v with %d failures", s.State, s.Failures)
	}
	if w := b.view.Load(); w&pendingBit != 0 {
		t.Fatalf("pendingBit stays: view %#x, owed %d", w, b.link.pushq.Load().owed.Load())
	}
}
