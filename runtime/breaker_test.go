package runtime_test

import (
	"context"
	"errors"
	"fmt"
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

var (
	errBoom     = errors.New("boom")
	errNotFound = errors.New("not found")
)

type clientError struct{ code int }

func (e *clientError) Error() string { return fmt.Sprintf("client error %d", e.code) }

// recorder is a listener that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []purgatory.Event
}

func (r *recorder) OnEvent(e purgatory.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) kinds() []purgatory.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []purgatory.EventKind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

func (r *recorder) of(k purgatory.EventKind) []purgatory.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []purgatory.Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

type env struct {
	clk *clocktest.Clock
	f   *purgatory.Factory
	rec *recorder
}

func newEnv(t *testing.T, opts ...purgatory.Option) *env {
	t.Helper()
	e := &env{clk: clocktest.New(time.Unix(1_700_000_000, 0)), rec: &recorder{}}
	opts = append([]purgatory.Option{purgatory.WithClock(e.clk), purgatory.WithListener(e.rec)}, opts...)
	e.f = purgatory.NewFactory(opts...)
	return e
}

// call makes one call through b that returns err.
func call(b *purgatory.Breaker, err error) error {
	return b.Do(context.Background(), func(context.Context) error { return err })
}

func trip(t *testing.T, b *purgatory.Breaker) {
	t.Helper()
	for range b.Config().Threshold {
		require.ErrorIs(t, call(b, errBoom), errBoom)
	}
	require.Equal(t, purgatory.Open, b.State())
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "closed", purgatory.Closed.String())
	assert.Equal(t, "open", purgatory.Open.String())
	assert.Equal(t, "half-open", purgatory.HalfOpen.String())
}

func TestDefaults(t *testing.T) {
	b := purgatory.NewFactory().Breaker("d", purgatory.Config{})
	cfg := b.Config()
	assert.Equal(t, 5, cfg.Threshold)
	assert.Equal(t, 30*time.Second, cfg.TTL)
	assert.Equal(t, 1, cfg.Trials)
	assert.Same(t, purgatory.Default(), purgatory.Default())

	f := purgatory.NewFactory(purgatory.WithThreshold(2), purgatory.WithTTL(time.Second), purgatory.WithTrials(3))
	cfg = f.Breaker("d", purgatory.Config{TTL: time.Minute}).Config()
	assert.Equal(t, 2, cfg.Threshold)
	assert.Equal(t, time.Minute, cfg.TTL, "the circuit's own setting wins over the factory's default")
	assert.Equal(t, 3, cfg.Trials)
}

func TestBadConfigPanics(t *testing.T) {
	f := purgatory.NewFactory()
	assert.PanicsWithValue(t, "purgatory: circuit \"x\": threshold out of range: -1", func() {
		f.Breaker("x", purgatory.Config{Threshold: -1})
	})
	assert.PanicsWithValue(t, "purgatory: ttl must be positive, got 0", func() { purgatory.WithTTL(0) })
	assert.PanicsWithValue(t, "purgatory: trials must be positive, got -2", func() { purgatory.WithTrials(-2) })
	for _, tc := range []struct {
		cfg  purgatory.Config
		want string
	}{
		{purgatory.Config{FailureRate: 1.5}, `purgatory: circuit "x": failure rate out of range: 1.5`},
		{purgatory.Config{Window: -time.Second}, `purgatory: circuit "x": window out of range: -1s`},
		{purgatory.Config{MinCalls: -1}, `purgatory: circuit "x": min calls out of range: -1`},
		{purgatory.Config{SlowCall: -1}, `purgatory: circuit "x": slow call out of range: -1ns`},
		{purgatory.Config{MaxTTL: -1}, `purgatory: circuit "x": max ttl out of range: -1ns`},
		{purgatory.Config{Threshold: 2_000_000}, `purgatory: circuit "x": bad settings: threshold 2000000 not in [0, 1000000]`},
		{purgatory.Config{TTL: 8 * 24 * time.Hour}, `purgatory: circuit "x": bad settings: ttl 192h0m0s not in (0, 168h0m0s]`},
		{purgatory.Config{FailureRate: 0.5, Window: time.Microsecond}, `purgatory: circuit "x": bad settings: window 1µs not in [1ms, 168h0m0s]`},
	} {
		assert.PanicsWithValue(t, tc.want, func() { f.Breaker("x", tc.cfg) })
	}
	assert.PanicsWithValue(t, "purgatory: failure rate must be in (0, 1], got 0", func() { purgatory.WithFailureRate(0, time.Second, 1) })
	assert.PanicsWithValue(t, "purgatory: window must be positive, got 0", func() { purgatory.WithFailureRate(0.5, 0, 1) })
	assert.PanicsWithValue(t, "purgatory: min calls must be positive, got 0", func() { purgatory.WithFailureRate(0.5, time.Second, 0) })
	assert.PanicsWithValue(t, "purgatory: slow call must be positive, got 0", func() { purgatory.WithSlowCall(0) })
	assert.PanicsWithValue(t, "purgatory: max ttl must be positive, got -1", func() { purgatory.WithMaxTTL(-1) })
	assert.PanicsWithValue(t, "purgatory: WithExclude: nil matcher", func() { purgatory.NewFactory(purgatory.WithExclude(nil)) })
	_, ok := f.Lookup("x")
	assert.False(t, ok, "a refused registration leaves nothing behind")
}

func TestStateMachine(t *testing.T) {
	type step struct {
		do    string // "ok", "fail", "advance", "open", "close"
		d     time.Duration
		want  purgatory.State
		calls bool // for ok/fail: whether the call reaches the inner function
	}
	cfg := purgatory.Config{Threshold: 3, TTL: 10 * time.Second, Trials: 1}
	tests := []struct {
		name  string
		steps []step
	}{
		{"threshold consecutive failures open", []step{
			{do: "fail", want: purgatory.Closed, calls: true},
			{do: "fail", want: purgatory.Closed, calls: true},
			{do: "fail", want: purgatory.Open, calls: true},
			{do: "ok", want: purgatory.Open, calls: false},
		}},
		{"a success resets the count", []step{
			{do: "fail", want: purgatory.Closed, calls: true},
			{do: "fail", want: purgatory.Closed, calls: true},
			{do: "ok", want: purgatory.Closed, calls: true},
			{do: "fail", want: purgatory.Closed, calls: true},
			{do: "fail", want: purgatory.Closed, calls: true},
			{do: "fail", want: purgatory.Open, calls: true},
		}},
		{"open until the ttl has passed", []step{
			{do: "open", want: purgatory.Open},
			{do: "advance", d: 10*time.Second - time.Nanosecond, want: purgatory.Open},
			{do: "fail", want: purgatory.Open, calls: false},
			{do: "advance", d: time.Nanosecond, want: purgatory.HalfOpen},
		}},
		{"a trial success closes", []step{
			{do: "open", want: purgatory.Open},
			{do: "advance", d: 10 * time.Second, want: purgatory.HalfOpen},
			{do: "ok", want: purgatory.Closed, calls: true},
			{do: "fail", want: purgatory.Closed, calls: true},
		}},
		{"a trial failure opens again for a full ttl", []step{
			{do: "open", want: purgatory.Open},
			{do: "advance", d: 10 * time.Second, want: purgatory.HalfOpen},
			{do: "fail", want: purgatory.Open, calls: true},
			{do: "advance", d: 9 * time.Second, want: purgatory.Open},
			{do: "advance", d: time.Second, want: purgatory.HalfOpen},
		}},
		{"manual close of an open circuit", []step{
			{do: "open", want: purgatory.Open},
			{do: "close", want: purgatory.Closed},
			{do: "ok", want: purgatory.Closed, calls: true},
			{do: "advance", d: time.Minute, want: purgatory.Closed},
		}},
		{"manual open of a half-open circuit", []step{
			{do: "open", want: purgatory.Open},
			{do: "advance", d: 10 * time.Second, want: purgatory.HalfOpen},
			{do: "open", want: purgatory.Open},
			{do: "advance", d: 10 * time.Second, want: purgatory.HalfOpen},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.f.Breaker("sm", cfg)
			for i, s := range tc.steps {
				switch s.do {
				case "ok", "fail":
					var result error
					if s.do == "fail" {
						result = errBoom
					}
					called := false
					err := b.Do(context.Background(), func(context.Context) error { called = true; return result })
					assert.Equal(t, s.calls, called, "step %d: inner call made", i)
					if !s.calls {
						assert.ErrorIs(t, err, purgatory.ErrOpen, "step %d", i)
					}
				case "advance":
					e.clk.Advance(s.d)
				case "open":
					b.Open()
				case "close":
					b.Close()
				}
				assert.Equal(t, s.want, b.State(), "step %d (%s)", i, s.do)
			}
		})
	}
}

func TestOpenError(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("payments", purgatory.Config{Threshold: 1, TTL: 10 * time.Second})
	trip(t, b)
	err := call(b, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, purgatory.ErrOpen)
	var oe *purgatory.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "payments", oe.Circuit)
	assert.Equal(t, 10*time.Second, oe.RetryAfter)
	assert.Equal(t, `purgatory: circuit "payments" is open: retry after 10s`, err.Error())

	// RetryAfter is refreshed lazily: never below the time left, at most
	// 10ms above it.
	e.clk.Advance(2500 * time.Millisecond)
	require.ErrorAs(t, call(b, nil), &oe)
	assert.Equal(t, 7500*time.Millisecond, oe.RetryAfter)
	e.clk.Advance(5 * time.Millisecond)
	require.ErrorAs(t, call(b, nil), &oe)
	assert.GreaterOrEqual(t, oe.RetryAfter, 7495*time.Millisecond)
	assert.LessOrEqual(t, oe.RetryAfter, 7505*time.Millisecond)
	e.clk.Advance(time.Second)
	require.ErrorAs(t, call(b, nil), &oe)
	assert.Equal(t, 6495*time.Millisecond, oe.RetryAfter)
}

func TestHalfOpenTrials(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("t", purgatory.Config{Threshold: 1, TTL: time.Second, Trials: 2})
	trip(t, b)
	e.clk.Advance(time.Second)
	require.Equal(t, purgatory.HalfOpen, b.State())

	ctx := context.Background()
	t1, err := b.Allow(ctx)
	require.NoError(t, err)
	t2, err := b.Allow(ctx)
	require.NoError(t, err)
	_, err = b.Allow(ctx)
	require.ErrorIs(t, err, purgatory.ErrOpen, "a third call while two trials run is rejected")
	assert.Equal(t, `purgatory: circuit "t" is half-open: trial calls in progress, retry within 1s`, err.Error())
	var oe *purgatory.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, time.Second, oe.RetryAfter, "the trials' lease: the latest a slot frees up")
	assert.Equal(t, purgatory.HalfOpen, oe.State())

	b.Done(ctx, t1, nil)
	assert.Equal(t, purgatory.HalfOpen, b.State(), "closed only once every trial succeeded")
	b.Done(ctx, t2, nil)
	assert.Equal(t, purgatory.Closed, b.State())
	assert.Len(t, e.rec.of(purgatory.EventRecovered), 1)
}

func TestStaleResultsIgnored(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("g", purgatory.Config{Threshold: 1, TTL: time.Second})
	ctx := context.Background()
	slow, err := b.Allow(ctx) // a slow call starts while closed
	require.NoError(t, err)
	trip(t, b)
	e.clk.Advance(time.Second)
	require.NoError(t, call(b, nil)) // trial succeeds: closed again
	require.Equal(t, purgatory.Closed, b.State())

	b.Done(ctx, slow, errBoom) // the slow call fails now: it counts for nothing
	assert.Equal(t, purgatory.Closed, b.State())

	trial := func() purgatory.Token {
		b.Open()
		e.clk.Advance(time.Second)
		tok, err := b.Allow(ctx)
		require.NoError(t, err)
		return tok
	}
	old := trial()
	b.Close()
	b.Done(ctx, old, errBoom) // a trial of an older generation fails
	assert.Equal(t, purgatory.Closed, b.State())
}

func TestExclude(t *testing.T) {
	isClient := func(err error) bool {
		var ce *clientError
		return errors.As(err, &ce) && ce.code < 500
	}
	errFactoryWide := errors.New("factory-wide")
	e := newEnv(t, purgatory.WithExclude(purgatory.Is(errFactoryWide)))
	b := e.f.Breaker("x", purgatory.Config{Threshold: 2, Exclude: []func(error) bool{
		purgatory.Is(errNotFound), purgatory.As[*clientError](), isClient,
	}})
	for _, err := range []error{
		errNotFound, fmt.Errorf("wrapped: %w", errNotFound), &clientError{404}, errFactoryWide,
	} {
		require.ErrorIs(t, call(b, errBoom), errBoom)
		got := call(b, err)
		assert.ErrorIs(t, got, err, "excluded errors are returned to the caller")
		require.ErrorIs(t, call(b, errBoom), errBoom)
		assert.Equal(t, purgatory.Closed, b.State(), "%v counted as a failure", err)
		require.NoError(t, call(b, nil))
	}
	assert.Empty(t, e.rec.of(purgatory.EventStateChanged))
}

func TestContextErrors(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("ctx", purgatory.Config{Threshold: 1})

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Do(canceled, func(ctx context.Context) error { return ctx.Err() })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, purgatory.Closed, b.State(), "the caller giving up is not a failure")

	err = b.Do(context.Background(), func(context.Context) error { return context.Canceled })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, purgatory.Open, b.State(), "Canceled while the caller's context is live is a failure")

	b.Close()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	err = b.Do(expired, func(ctx context.Context) error { return ctx.Err() })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, purgatory.Open, b.State(), "a deadline is a failure")
}

func TestCanceledTrialReleasesSlot(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("rel", purgatory.Config{Threshold: 1, TTL: time.Second})
	trip(t, b)
	e.clk.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, purgatory.HalfOpen, b.State())
	require.NoError(t, call(b, nil), "the slot was given back: another trial may run")
	assert.Equal(t, purgatory.Closed, b.State())
}

func TestPanicIsFailure(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("p", purgatory.Config{Threshold: 1})
	assert.PanicsWithValue(t, "inner exploded", func() {
		_ = b.Do(context.Background(), func(context.Context) error { panic("inner exploded") })
	})
	assert.Equal(t, purgatory.Open, b.State())
	failures := e.rec.of(purgatory.EventFailure)
	require.Len(t, failures, 1)
	assert.ErrorIs(t, failures[0].Err, purgatory.ErrPanicked)
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("ev", purgatory.Config{Threshold: 2, TTL: time.Second})
	require.NoError(t, call(b, nil))
	_ = call(b, errBoom)
	_ = call(b, errBoom)
	_ = call(b, nil)
	e.clk.Advance(time.Second)
	_ = call(b, nil)

	K := func(k ...purgatory.EventKind) []purgatory.EventKind { return k }
	assert.Equal(t, K(purgatory.EventCreated, purgatory.EventFailure, purgatory.EventFailure,
		purgatory.EventStateChanged, purgatory.EventRejected, purgatory.EventStateChanged,
		purgatory.EventStateChanged, purgatory.EventRecovered), e.rec.kinds())

	created := e.rec.of(purgatory.EventCreated)[0]
	assert.Equal(t, "ev", created.Circuit)
	assert.Equal(t, 2, created.Config.Threshold)
	fails := e.rec.of(purgatory.EventFailure)
	assert.Equal(t, 1, fails[0].Failures)
	assert.Equal(t, 2, fails[1].Failures)
	assert.ErrorIs(t, fails[0].Err, errBoom)
	changes := e.rec.of(purgatory.EventStateChanged)
	assert.Equal(t, [][2]purgatory.State{
		{purgatory.Closed, purgatory.Open}, {purgatory.Open, purgatory.HalfOpen}, {purgatory.HalfOpen, purgatory.Closed},
	}, [][2]purgatory.State{{changes[0].From, changes[0].To}, {changes[1].From, changes[1].To}, {changes[2].From, changes[2].To}})
	assert.ErrorIs(t, e.rec.of(purgatory.EventRejected)[0].Err, purgatory.ErrOpen)
	for _, k := range []purgatory.EventKind{purgatory.EventCreated, purgatory.EventStateChanged, purgatory.EventFailure,
		purgatory.EventRecovered, purgatory.EventRejected, purgatory.EventConfigConflict, purgatory.EventStoreError} {
		assert.NotEqual(t, "invalid", k.String())
	}
}

func TestConfigConflict(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("cc", purgatory.Config{Threshold: 2})
	assert.Same(t, b, e.f.Breaker("cc", purgatory.Config{Threshold: 2}))
	assert.Empty(t, e.rec.of(purgatory.EventConfigConflict), "same settings: no conflict")

	again := e.f.Breaker("cc", purgatory.Config{Threshold: 3, TTL: time.Minute})
	assert.Same(t, b, again, "the first registration stays in force")
	assert.Equal(t, 2, again.Config().Threshold)
	conflicts := e.rec.of(purgatory.EventConfigConflict)
	require.Len(t, conflicts, 1)
	assert.EqualError(t, conflicts[0].Err,
		`purgatory: circuit "cc" is registered with threshold=2 ttl=30s trials=1; ignoring threshold=3 ttl=1m0s trials=1`)
}

func TestSharedMemoryStore(t *testing.T) {
	shared := store.NewMemory()
	clk := clocktest.New(time.Unix(0, 0))
	rec := &recorder{}
	one := purgatory.NewFactory(purgatory.WithStore(shared), purgatory.WithClock(clk))
	two := purgatory.NewFactory(purgatory.WithStore(shared), purgatory.WithClock(clk), purgatory.WithListener(rec))
	b1 := one.Breaker("shared", purgatory.Config{Threshold: 2, TTL: time.Second})
	b2 := two.Breaker("shared", purgatory.Config{Threshold: 9})
	assert.Equal(t, 2, b2.Config().Threshold, "the first registration in the store wins")
	assert.Len(t, rec.of(purgatory.EventConfigConflict), 1)

	_ = call(b1, errBoom)
	_ = call(b2, errBoom) // failures add up across users of the store
	assert.Equal(t, purgatory.Open, b1.State())
	assert.Equal(t, purgatory.Open, b2.State())
	assert.ErrorIs(t, call(b2, nil), purgatory.ErrOpen)

	clk.Advance(time.Second)
	require.Equal(t, purgatory.HalfOpen, b2.State())
	ctx := context.Background()
	tok, err := b1.Allow(ctx)
	require.NoError(t, err)
	_, err = b2.Allow(ctx)
	assert.ErrorIs(t, err, purgatory.ErrOpen, "trial slots are shared")
	b1.Done(ctx, tok, nil)
	assert.Equal(t, purgatory.Closed, b2.State())
}

func TestListenerPanicIsContained(t *testing.T) {
	e := newEnv(t, purgatory.WithListener(purgatory.ListenerFunc(func(purgatory.Event) { panic("bad listener") })))
	b := e.f.Breaker("lp", purgatory.Config{Threshold: 1})
	assert.NotPanics(t, func() { _ = call(b, errBoom) })
	assert.Equal(t, purgatory.Open, b.State())
	assert.Len(t, e.rec.of(purgatory.EventStateChanged), 1, "later listeners still hear")
}

func TestAddRemoveListener(t *testing.T) {
	e := newEnv(t)
	b := e.f.Breaker("l", purgatory.Config{Threshold: 1, TTL: time.Second})
	extra := &recorder{}
	remove := e.f.AddListener(extra)
	trip(t, b)
	assert.NotEmpty(t, extra.of(purgatory.EventStateChanged))
	remove()
	remove() // idempotent
	extra.reset()
	b.Close()
	assert.Empty(t, extra.kinds())
	assert.NotEmpty(t, e.rec.of(purgatory.EventStateChanged))
}

// failingStore is a real memory store behind a switch that makes every
// operation fail, as a shared store does when its server is down.
type failingStore struct {
	*store.Memory
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("store down")

func (s *failingStore) setDown(v bool) { s.mu.Lock(); s.down = v; s.mu.Unlock() }
func (s *failingStore) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	return nil
}

func (s *failingStore) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.Memory.Failure(ctx, op)
}

func (s *failingStore) Force(ctx context.Context, op store.Op, to store.State) (store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.Memory.Force(ctx, op, to)
}

func (s *failingStore) Expire(ctx context.Context, op store.Op) (store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.Memory.Expire(ctx, op)
}

func (s *failingStore) Claim(ctx context.Context, op store.Op) (store.Snapshot, bool, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, false, err
	}
	return s.Memory.Claim(ctx, op)
}

func (s *failingStore) Success(ctx context.Context, op store.Op) (store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.Memory.Success(ctx, op)
}

func (s *failingStore) Release(ctx context.Context, op store.Op) (store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.Memory.Release(ctx, op)
}

func (s *failingStore) Record(ctx context.Context, op store.Op, calls, failed int) (store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.Memory.Record(ctx, op, calls, failed)
}

func (s *failingStore) Reconcile(ctx context.Context, op store.Op, base uint64, want store.Snapshot) (store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Snapshot{}, err
	}
	return s.Memory.Reconcile(ctx, op, base, want)
}

func (s *failingStore) Register(ctx context.Context, name string, set store.Settings) (store.Settings, store.Snapshot, error) {
	if err := s.err(); err != nil {
		return store.Settings{}, store.Snapshot{}, err
	}
	return s.Memory.Register(ctx, name, set)
}

func TestStoreDownKeepsWorkingLocally(t *testing.T) {
	fs := &failingStore{Memory: store.NewMemory()}
	e := newEnv(t, purgatory.WithStore(fs))
	b := e.f.Breaker("down", purgatory.Config{Threshold: 2, TTL: 10 * time.Second})
	fs.setDown(true)
	for range 2 {
		assert.ErrorIs(t, call(b, errBoom), errBoom)
	}
	assert.Equal(t, purgatory.Open, b.State(), "trips on local state while the store is down")
	storeErrs := e.rec.of(purgatory.EventStoreError)
	require.Len(t, storeErrs, 1, "one store-error event per episode, not one per call")
	assert.ErrorIs(t, storeErrs[0].Err, errDown)

	e.clk.Advance(10 * time.Second)
	assert.Equal(t, purgatory.HalfOpen, b.State(), "the local view expires by itself")
	fs.setDown(false)
	e.clk.Advance(2 * time.Second) // past the store back-off
	require.NoError(t, call(b, nil))
	assert.Equal(t, purgatory.Closed, b.State(), "back in step with the store")
	_ = call(b, errBoom)
	_ = call(b, errBoom)
	assert.Equal(t, purgatory.Open, b.State())
	assert.Len(t, e.rec.of(purgatory.EventStoreError), 1)
}

// forgetfulStore loses its records on demand, as a Redis restored from an
// old snapshot does.
type forgetfulStore struct{ *store.Memory }

func (s *forgetfulStore) forget() { s.Memory = store.NewMemory() }

func TestStoreThatLostWritesWins(t *testing.T) {
	fs := &forgetfulStore{Memory: store.NewMemory()}
	e := newEnv(t, purgatory.WithStore(fs))
	b := e.f.Breaker("lost", purgatory.Config{Threshold: 1, TTL: time.Second})
	b.Open()
	b.Close()
	trip(t, b) // generation 4 here, open
	fs.forget()
	e.clk.Advance(time.Second) // expiry asks the store, which is at generation 1
	assert.Equal(t, purgatory.Closed, b.State(), "the store's older record is adopted, not ignored forever")
	require.ErrorIs(t, call(b, errBoom), errBoom)
	assert.Equal(t, purgatory.Open, b.State(), "and the breaker works on it")
}

func TestLookup(t *testing.T) {
	e := newEnv(t)
	_, ok := e.f.Lookup("nope")
	assert.False(t, ok)
	b := e.f.Breaker("here", purgatory.Config{Threshold: 2})
	got, ok := e.f.Lookup("here")
	require.True(t, ok)
	assert.Same(t, b, got)
	assert.Empty(t, e.rec.of(purgatory.EventConfigConflict), "looking up registers nothing")
}

// TestIgnore: an error an ignore matcher matches counts as neither success
// nor failure: it neither adds to nor resets the consecutive failures, a
// half-open trial that ends with it gives its slot back, and it is
// counted as Ignored. Ignore is checked before Exclude; the list is part
// of the registration, as Exclude's is.
func TestIgnore(t *testing.T) {
	e := newEnv(t)
	errPoll := errors.New("poll timeout")
	ignore := []func(error) bool{purgatory.Is(context.DeadlineExceeded), purgatory.Is(errPoll)}
	b := e.f.Breaker("ig", purgatory.Config{Threshold: 2, TTL: time.Second, Ignore: ignore,
		Exclude: []func(error) bool{purgatory.Is(errPoll)}})
	assert.Len(t, b.Config().Ignore, 2)

	require.ErrorIs(t, call(b, errBoom), errBoom)
	for range 10 {
		require.ErrorIs(t, call(b, fmt.Errorf("fetch: %w", context.DeadlineExceeded)), context.DeadlineExceeded, "returned as it is")
		require.ErrorIs(t, call(b, errPoll), errPoll)
	}
	assert.Equal(t, purgatory.Closed, b.State(), "ignored errors are not failures")
	assert.Equal(t, 1, b.Status().Failures, "nor successes: the count stands")
	require.ErrorIs(t, call(b, errBoom), errBoom)
	assert.Equal(t, purgatory.Open, b.State())
	counts := b.Status().Counts
	assert.Equal(t, uint64(20), counts.Ignored)
	assert.Zero(t, counts.Excluded, "ignore is checked before exclude")

	// Half-open: an ignored trial gives its slot back; the circuit stays half-open.
	e.clk.Advance(time.Second)
	require.Equal(t, purgatory.HalfOpen, b.State())
	require.ErrorIs(t, call(b, errPoll), errPoll)
	assert.Equal(t, purgatory.HalfOpen, b.State())
	require.NoError(t, call(b, nil), "the slot is free again")
	assert.Equal(t, purgatory.Closed, b.State())

	// The same list again is the same registration; another is a conflict.
	e.f.Breaker("ig", purgatory.Config{Threshold: 2, TTL: time.Second, Ignore: []func(error) bool{purgatory.Is(context.DeadlineExceeded), purgatory.Is(errPoll)},
		Exclude: []func(error) bool{purgatory.Is(errPoll)}})
	assert.Empty(t, e.rec.of(purgatory.EventConfigConflict))
	e.f.Breaker("ig", purgatory.Config{Threshold: 2, TTL: time.Second, Exclude: []func(error) bool{purgatory.Is(errPoll)}})
	require.Len(t, e.rec.of(purgatory.EventConfigConflict), 1, "a missing ignore list is another configuration")

	assert.PanicsWithValue(t, `purgatory: circuit "nil-ig": ignore matcher 0 is nil`, func() {
		e.f.Breaker("nil-ig", purgatory.Config{Ignore: []func(error) bool{nil}})
	})
}

// countingClock is a fake clock that counts its readings.
type countingClock struct {
	*clocktest.Clock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return c.Clock.Now()
}

// TestFailureBelowThresholdReadsNoClock: on local state, a failure that
// does not open the circuit, and the success that resets the count, read
// no clock; the failure that opens it does, and its open period runs from
// that reading.
func TestFailureBelowThresholdReadsNoClock(t *testing.T) {
	clk := &countingClock{Clock: clocktest.New(time.Unix(1_700_000_000, 0))}
	b := purgatory.NewFactory(purgatory.WithClock(clk)).Breaker("c", purgatory.Config{Threshold: 3, TTL: time.Second})
	reads := clk.reads.Load()
	for range 2 {
		require.ErrorIs(t, call(b, errBoom), errBoom)
	}
	require.NoError(t, call(b, nil))
	for range 2 {
		require.ErrorIs(t, call(b, errBoom), errBoom)
	}
	assert.Equal(t, reads, clk.reads.Load(), "failures below the threshold, or a reset, read the clock")
	require.ErrorIs(t, call(b, errBoom), errBoom)
	require.Equal(t, purgatory.Open, b.State())
	assert.Greater(t, clk.reads.Load(), reads, "the failure that opens the circuit reads the clock")
	clk.Advance(time.Second - time.Nanosecond)
	assert.Equal(t, purgatory.Open, b.State())
	clk.Advance(time.Nanosecond)
	assert.Equal(t, purgatory.HalfOpen, b.State())
}
