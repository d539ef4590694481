package runtime_test

import (
	"context"
	"errors"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// ctxStore is a memory store that honours contexts the way a network
// store does: an operation with a done context fails at once. It counts
// the claims it is asked for.
type ctxStore struct {
	*failingStore
	claims atomic.Int64
}

func newCtxStore() *ctxStore {
	return &ctxStore{failingStore: &failingStore{Memory: store.NewMemory()}}
}

func (s *ctxStore) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.failingStore.Failure(ctx, op)
}

func (s *ctxStore) Claim(ctx context.Context, op store.Op) (store.Snapshot, bool, error) {
	s.claims.Add(1)
	if err := ctx.Err(); err != nil {
		return store.Snapshot{}, false, err
	}
	return s.failingStore.Claim(ctx, op)
}

func (s *ctxStore) Release(ctx context.Context, op store.Op) (store.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.failingStore.Release(ctx, op)
}

// pair is two factories sharing one store, as two processes share a Redis.
func pair(t *testing.T, st store.Store) (clk *clocktest.Clock, a, b *purgatory.Factory, rec *recorder) {
	t.Helper()
	clk = clocktest.New(time.Unix(1_700_000_000, 0))
	rec = &recorder{}
	a = purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk), purgatory.WithListener(rec))
	b = purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk))
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return clk, a, b, rec
}

// Item 1: a call that failed because its deadline passed reaches the store
// with a context that is done; the failure must still be recorded there.
func TestTimeoutsReachTheStore(t *testing.T) {
	st := newCtxStore()
	_, fa, fb, rec := pair(t, st)
	cfg := purgatory.Config{Threshold: 3, TTL: time.Minute}
	a, b := fa.Breaker("timeouts", cfg), fb.Breaker("timeouts", cfg)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		<-ctx.Done()
		tok, err := a.Allow(ctx)
		require.NoError(t, err)
		a.Done(ctx, tok, ctx.Err())
		cancel()
	}
	assert.Equal(t, purgatory.Open, a.State())
	assert.Equal(t, purgatory.Open, b.State(), "the store counted the timeouts: the other process is open too")
	assert.Empty(t, rec.of(purgatory.EventStoreError), "a healthy store is not blamed for the caller's deadline")
	assert.Equal(t, uint64(3), a.Status().Counts.Failure)
}

// Item 2: a trial that never reports cannot wedge the circuit, whatever
// keeps it from reporting.
func TestHalfOpenNeverWedges(t *testing.T) {
	const ttl = time.Second
	cases := map[string]func(t *testing.T, clk *clocktest.Clock, st *ctxStore, b *purgatory.Breaker, other *purgatory.Factory){
		"hung call": func(t *testing.T, _ *clocktest.Clock, _ *ctxStore, b *purgatory.Breaker, _ *purgatory.Factory) {
			_, err := b.Allow(context.Background()) // never reported
			require.NoError(t, err)
		},
		"panicking exclude matcher": func(t *testing.T, _ *clocktest.Clock, _ *ctxStore, b *purgatory.Breaker, _ *purgatory.Factory) {
			tok, err := b.Allow(context.Background())
			require.NoError(t, err)
			assert.NotPanics(t, func() { b.Done(context.Background(), tok, errNotFound) })
			assert.Equal(t, purgatory.Open, b.State(), "the matcher's panic does not hide the failure")
		},
		"store error while recording the result": func(t *testing.T, _ *clocktest.Clock, st *ctxStore, b *purgatory.Breaker, _ *purgatory.Factory) {
			tok, err := b.Allow(context.Background())
			require.NoError(t, err)
			st.setDown(true)
			b.Done(context.Background(), tok, nil)
			st.setDown(false)
		},
		"cancelled trial whose release fails": func(t *testing.T, _ *clocktest.Clock, st *ctxStore, b *purgatory.Breaker, _ *purgatory.Factory) {
			ctx, cancel := context.WithCancel(context.Background())
			tok, err := b.Allow(ctx)
			require.NoError(t, err)
			cancel()
			st.setDown(true)
			b.Done(ctx, tok, context.Canceled)
			st.setDown(false)
		},
		"process holding the trial is gone": func(t *testing.T, _ *clocktest.Clock, _ *ctxStore, _ *purgatory.Breaker, other *purgatory.Factory) {
			ob := other.Breaker("wedge", purgatory.Config{})
			_, err := ob.Allow(context.Background())
			require.NoError(t, err)
			require.NoError(t, other.Close()) // and never reports
		},
	}
	for name, hold := range cases {
		t.Run(name, func(t *testing.T) {
			st := newCtxStore()
			panicky := func(error) bool { panic("matcher bug") }
			clk, fa, fb, _ := pair(t, st)
			b := fa.Breaker("wedge", purgatory.Config{Threshold: 1, TTL: ttl, Exclude: []func(error) bool{panicky}})
			require.ErrorIs(t, call(b, errBoom), errBoom)
			clk.Advance(ttl)
			require.Equal(t, purgatory.HalfOpen, b.State())
			hold(t, clk, st, b, fb)
			// A day later a call gets through again.
			admitted := false
			for range 24 * 3600 / 2 {
				clk.Advance(2 * ttl)
				if tok, err := b.Allow(context.Background()); err == nil {
					b.Done(context.Background(), tok, nil)
					admitted = true
					break
				}
			}
			assert.True(t, admitted, "the circuit rejected every call for a day")
			assert.Equal(t, purgatory.Closed, b.State(), "the successful trial closed it")
		})
	}
}

// Item 2, the lease: while the hung trial holds the slot, others are
// rejected; when the lease runs out the circuit re-opens with a longer
// period (the hang counts as a failed trial), then lets a new trial in.
func TestTrialLeaseReopens(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("lease", purgatory.Config{Threshold: 1, TTL: time.Second, MaxTTL: time.Minute})
	trip(t, b)
	e.clk.Advance(time.Second)
	_, err := b.Allow(context.Background())
	require.NoError(t, err)
	e.clk.Advance(999 * time.Millisecond)
	assert.Equal(t, purgatory.HalfOpen, b.State())
	e.clk.Advance(time.Millisecond)
	assert.Equal(t, purgatory.Open, b.State(), "the lease ran out")
	assert.Equal(t, 2*time.Second, b.Status().RetryAfter, "one backoff level up")
	e.clk.Advance(2 * time.Second)
	require.NoError(t, call(b, nil))
	assert.Equal(t, purgatory.Closed, b.State())
}

// Item 3: what happened while the store was away is pushed when it is
// back, unless the record moved on meanwhile.
func TestReconciliation(t *testing.T) {
	t.Run("operator close during the outage", func(t *testing.T) {
		st := newCtxStore()
		clk, fa, fb, _ := pair(t, st)
		a, b := fa.Breaker("rc", purgatory.Config{Threshold: 1, TTL: time.Hour}), fb.Breaker("rc", purgatory.Config{})
		trip(t, a)
		require.Equal(t, purgatory.Open, b.State())
		st.setDown(true)
		a.Close()
		assert.Equal(t, purgatory.Closed, a.State(), "closed locally during the outage")
		st.setDown(false)
		clk.Advance(2 * time.Second) // the reconciliation retry
		assert.Equal(t, purgatory.Closed, a.State(), "not reverted by the store's older record")
		assert.Equal(t, purgatory.Closed, b.State(), "and pushed to the other process")
	})
	t.Run("trip during the outage", func(t *testing.T) {
		st := newCtxStore()
		clk, fa, fb, _ := pair(t, st)
		a, b := fa.Breaker("rt", purgatory.Config{Threshold: 1, TTL: time.Hour}), fb.Breaker("rt", purgatory.Config{})
		st.setDown(true)
		require.ErrorIs(t, call(a, errBoom), errBoom)
		require.Equal(t, purgatory.Open, a.State())
		st.setDown(false)
		clk.Advance(2 * time.Second)
		assert.Equal(t, purgatory.Open, a.State(), "the trip is not forgotten")
		assert.Equal(t, purgatory.Open, b.State(), "and reaches the other process")
	})
	t.Run("the record moved on: it wins", func(t *testing.T) {
		st := newCtxStore()
		clk, fa, fb, _ := pair(t, st)
		a, b := fa.Breaker("rw", purgatory.Config{Threshold: 1, TTL: time.Hour}), fb.Breaker("rw", purgatory.Config{})
		st.setDown(true)
		require.ErrorIs(t, call(a, errBoom), errBoom) // a opened locally
		st.setDown(false)
		b.Isolate() // meanwhile an operator isolated it through b
		clk.Advance(2 * time.Second)
		assert.Equal(t, purgatory.Isolated, a.State(), "the newer record wins")
	})
	t.Run("one trial at a time across a store blip", func(t *testing.T) {
		st := newCtxStore()
		clk, fa, _, _ := pair(t, st)
		a := fa.Breaker("rb", purgatory.Config{Threshold: 1, TTL: 10 * time.Second, Trials: 1})
		trip(t, a)
		clk.Advance(10 * time.Second)
		tok, err := a.Allow(context.Background()) // the trial, granted by the store
		require.NoError(t, err)
		st.setDown(true)
		_, err = a.Allow(context.Background())
		assert.ErrorIs(t, err, purgatory.ErrOpen, "no second trial while the store is down")
		st.setDown(false)
		clk.Advance(2 * time.Second)
		_, err = a.Allow(context.Background())
		assert.ErrorIs(t, err, purgatory.ErrOpen, "nor after it is back")
		a.Done(context.Background(), tok, nil)
	})
}

// Item 4: a listener that looks the circuit up on EventCreated, or
// registers it again, must not deadlock the factory.
func TestListenerCallsBackIntoFactory(t *testing.T) {
	var f *purgatory.Factory
	var seen atomic.Int32
	f = purgatory.NewFactory(purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind == purgatory.EventCreated || e.Kind == purgatory.EventStateChanged {
			b, ok := f.Lookup(e.Circuit)
			if ok {
				_ = b.Status()
				_ = f.Breaker(e.Circuit, purgatory.Config{})
				if e.Kind == purgatory.EventStateChanged && e.To == purgatory.Open {
					b.Close() // an operator hook that closes it again
				}
				seen.Add(1)
			}
		}
	})))
	done := make(chan *purgatory.Breaker)
	go func() {
		b := f.Breaker("cb", purgatory.Config{Threshold: 1})
		_ = call(b, errBoom)
		done <- b
	}()
	select {
	case b := <-done:
		assert.Equal(t, int32(3), seen.Load(), "created, closed->open, open->closed")
		assert.Equal(t, purgatory.Closed, b.State(), "the listener's Close took effect")
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: a listener calling back into the factory blocked it")
	}
}

// Item 5: once every trial slot is taken, rejections are local: no store
// call, and a RetryAfter hint.
func TestHalfOpenRejectionIsLocal(t *testing.T) {
	st := newCtxStore()
	clk, fa, _, _ := pair(t, st)
	b := fa.Breaker("local", purgatory.Config{Threshold: 1, TTL: time.Second})
	trip(t, b)
	clk.Advance(time.Second)
	tok, err := b.Allow(context.Background())
	require.NoError(t, err)
	before := st.claims.Load()
	for range 100 {
		_, err := b.Allow(context.Background())
		var oe *purgatory.OpenError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, purgatory.HalfOpen, oe.State())
		assert.Positive(t, oe.RetryAfter)
	}
	assert.Equal(t, before, st.claims.Load(), "rejections while the slots are taken make no store call")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = b.Allow(context.Background()) }))
	b.Done(context.Background(), tok, nil)
}

// Item 6: a dropped factory is collected with its watches; Close stops
// them at once.
func TestDroppedFactoriesAreCollected(t *testing.T) {
	shared := store.NewMemory()
	func() {
		for i := range 1000 {
			f := purgatory.NewFactory(purgatory.WithStore(shared))
			f.Breaker("dropped-"+string(rune('a'+i%26))+string(rune('a'+i/26)), purgatory.Config{})
		}
	}()
	require.Positive(t, shared.Len())
	require.Eventually(t, func() bool {
		goruntime.GC()
		return shared.Len() == 0
	}, 10*time.Second, 10*time.Millisecond, "the store still watches breakers of dropped factories")

	f := purgatory.NewFactory(purgatory.WithStore(shared))
	f.Breaker("closed-factory", purgatory.Config{})
	require.Equal(t, 1, shared.Len())
	require.NoError(t, f.Close())
	assert.Zero(t, shared.Len(), "Close stops the watches")
}

// Item 7: a second registration with another exclude list is reported;
// the same list (Is and As give the same matcher) is not.
func TestExcludeListConflict(t *testing.T) {
	e := newEnv(t)
	isClient := purgatory.As[*clientError]()
	e.f.Breaker("ex", purgatory.Config{Exclude: []func(error) bool{purgatory.Is(errNotFound), isClient}})
	e.f.Breaker("ex", purgatory.Config{Exclude: []func(error) bool{purgatory.Is(errNotFound), purgatory.As[*clientError]()}})
	assert.Empty(t, e.rec.of(purgatory.EventConfigConflict), "the same list")
	e.f.Breaker("ex", purgatory.Config{Exclude: []func(error) bool{purgatory.Is(errBoom)}})
	require.Len(t, e.rec.of(purgatory.EventConfigConflict), 1, "another list is never dropped in silence")
}

// Item 8: nil matchers are refused at registration; panicking ones count
// the error as a failure.
func TestBadMatchers(t *testing.T) {
	e := newEnv(t)
	assert.PanicsWithValue(t, `purgatory: circuit "nil-m": exclude matcher 1 is nil`, func() {
		e.f.Breaker("nil-m", purgatory.Config{Exclude: []func(error) bool{purgatory.Is(errNotFound), nil}})
	})
	b := e.f.Breaker("panic-m", purgatory.Config{Threshold: 1,
		Exclude: []func(error) bool{func(error) bool { panic("bug") }}})
	assert.NotPanics(t, func() { _ = call(b, errBoom) })
	assert.Equal(t, purgatory.Open, b.State())
}

// Item 9: a listener sees one circuit's state changes in order, however
// the goroutines that cause them race.
func TestEventsInOrder(t *testing.T) {
	var mu sync.Mutex
	last := map[string]purgatory.Event{}
	var broken []string
	f := purgatory.NewFactory(purgatory.WithTTL(time.Millisecond), purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind != purgatory.EventStateChanged {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := last[e.Circuit]; ok && (prev.To != e.From || prev.Seq >= e.Seq) {
			broken = append(broken, prev.From.String()+"->"+prev.To.String()+" then "+e.From.String()+"->"+e.To.String())
		}
		last[e.Circuit] = e
	})))
	b := f.Breaker("order", purgatory.Config{Threshold: 1})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				switch (w + i) % 4 {
				case 0:
					b.Open()
				case 1:
					b.Close()
				default:
					_ = call(b, errBoom)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, broken)
	assert.Equal(t, b.Status().Seq, b.Status().Seq)
}

// jumpStore moves every generation it hands out 2^32 ahead, as a store
// restored from a record of another lineage might.
type jumpStore struct{ *store.Memory }

func (s jumpStore) Force(ctx context.Context, op store.Op, to store.State) (store.Snapshot, error) {
	snap, err := s.Memory.Force(ctx, op, to)
	snap.Gen += 1 << 32
	return snap, err
}

// Item 10: generations are compared in full: a result from generation g
// is not taken for one of g + 2^32.
func TestFullGenerations(t *testing.T) {
	e := newEnv(t, purgatory.WithStore(jumpStore{store.NewMemory()}))
	b := e.f.Breaker("gen", purgatory.Config{Threshold: 1})
	tok, err := b.Allow(context.Background())
	require.NoError(t, err)
	b.Close() // the store answers with a generation 2^32 ahead
	b.Done(context.Background(), tok, errBoom)
	assert.Equal(t, purgatory.Closed, b.State(), "a stale result that matched the low 32 bits counted")
}

// Item 11: dropping per-key circuits; lookups of existing names are
// lock-free and allocation-free.
func TestRemoveAndLookupCost(t *testing.T) {
	e := newEnv(t)
	ex := []func(error) bool{purgatory.Is(errNotFound)}
	b := e.f.Breaker("host-1", purgatory.Config{Exclude: ex})
	assert.Zero(t, testing.AllocsPerRun(100, func() { e.f.Breaker("host-1", purgatory.Config{Exclude: ex}) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { e.f.Lookup("host-1") }))
	assert.True(t, e.f.Remove("host-1"))
	assert.False(t, e.f.Remove("host-1"))
	removed := e.rec.of(purgatory.EventRemoved)
	require.Len(t, removed, 1, "exporters hear of it")
	assert.Equal(t, "host-1", removed[0].Circuit)
	_, ok := e.f.Lookup("host-1")
	assert.False(t, ok)
	assert.NoError(t, call(b, nil), "a removed breaker still held keeps working")
	assert.NotSame(t, b, e.f.Breaker("host-1", purgatory.Config{}), "registered afresh")
}

// Item 12: misuse does not count as a downstream failure.
func TestMisuse(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("misuse", purgatory.Config{Threshold: 1, TTL: time.Second, Trials: 2})
	assert.PanicsWithValue(t, `purgatory: Do on circuit "misuse" with a nil func`, func() { _ = b.Do(context.Background(), nil) })
	assert.Equal(t, purgatory.Closed, b.State(), "a nil func is not a failure")
	trip(t, b)
	e.clk.Advance(time.Second)
	ctx := context.Background()
	t1, err := b.Allow(ctx)
	require.NoError(t, err)
	t2, err := b.Allow(ctx)
	require.NoError(t, err)
	b.Done(ctx, t1, nil)
	b.Done(ctx, t1, nil) // reported twice
	assert.Equal(t, purgatory.HalfOpen, b.State(), "one trial reported twice does not close the circuit")
	b.Done(ctx, t2, nil)
	assert.Equal(t, purgatory.Closed, b.State())
}

// A nil context means the call's context is unknown: a cancellation is
// the caller's, not a failure.
func TestNilContext(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("nilctx", purgatory.Config{Threshold: 1})
	tok, err := b.Allow(nil) //nolint:staticcheck // generated code passes nil when it knows no context
	require.NoError(t, err)
	b.Done(nil, tok, context.Canceled) //nolint:staticcheck
	assert.Equal(t, purgatory.Closed, b.State())
	tok, _ = b.Allow(nil)                      //nolint:staticcheck
	b.Done(nil, tok, context.DeadlineExceeded) //nolint:staticcheck
	assert.Equal(t, purgatory.Open, b.State())
}

var _ = errors.New

// conflictStore answers like a shared store whose record holds other
// settings than the caller's: applied, with an error that says so.
type conflictStore struct {
	*store.Memory
	pingErr error
}

type conflictErr struct{ inForce, wanted store.Settings }

func (e *conflictErr) Error() string                              { return "record settings differ" }
func (e *conflictErr) Applied() bool                              { return true }
func (e *conflictErr) Settings() (inForce, wanted store.Settings) { return e.inForce, e.wanted }

func (s *conflictStore) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	snap, _ := s.Memory.Failure(ctx, op)
	in := op.Settings
	in.Threshold = 1
	return snap, &conflictErr{inForce: in, wanted: op.Settings}
}

func (s *conflictStore) Ping(context.Context) error { return s.pingErr }

// A store's applied answer with a conflict is adopted and reported as a
// config conflict, not a store error; a failing Ping at the first
// registration is reported as a store error.
func TestStoreAppliedErrorsAndPing(t *testing.T) {
	errNoPerm := errors.New("NOPERM this user has no permissions to run the 'publish' command")
	e := newEnv(t, purgatory.WithStore(&conflictStore{Memory: store.NewMemory(), pingErr: errNoPerm}))
	b := e.f.Breaker("applied", purgatory.Config{Threshold: 2})
	storeErrs := e.rec.of(purgatory.EventStoreError)
	require.Len(t, storeErrs, 1)
	assert.ErrorIs(t, storeErrs[0].Err, errNoPerm)
	_ = call(b, errBoom)
	_ = call(b, errBoom)
	assert.Equal(t, purgatory.Open, b.State(), "the answers were adopted")
	assert.Len(t, e.rec.of(purgatory.EventConfigConflict), 1, "reported once")
	assert.Len(t, e.rec.of(purgatory.EventStoreError), 1, "not as a store error")
}
