package runtime

import (
	"context"
	"testing"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// panickyStore panics in Register for the name "bad".
type panickyStore struct{ store.Store }

func (s panickyStore) Register(ctx context.Context, name string, set store.Settings) (store.Settings, store.Snapshot, error) {
	if name == "bad" {
		panic("store bug")
	}
	return s.Store.Register(ctx, name, set)
}

// TestPanicDuringRegistration: a Store that panics in Register (or Watch)
// must not leave a breaker in the factory that nobody can wait for: every
// later Breaker, Lookup, Remove of the name, and Breakers and Close, would
// block for ever. The panic reaches the caller; the name registers afresh
// next time. (Found in review; checked without blocking.)
func TestPanicDuringRegistration(t *testing.T) {
	f := NewFactory(WithStore(panickyStore{store.NewMemory()}))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the store's panic did not reach the caller")
			}
		}()
		f.Breaker("bad", Config{})
	}()
	if v, ok := f.breakers.Load("bad"); ok {
		b := v.(*Breaker)
		if !b.flags.has(flagReady) && !b.regMu.TryLock() {
			t.Fatal("after a panic in registration the breaker stays in the factory, not ready, regMu held")
		}
		t.Fatal("the breaker of a failed registration stays in the factory")
	}
	if _, ok := f.Lookup("bad"); ok {
		t.Fatal("Lookup finds the breaker of a failed registration")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
