package runtime_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// skewedPair is two factories on one memory store whose clocks disagree:
// b's clock is ahead of a's by ahead.
type skewedPair struct {
	clkA, clkB *clocktest.Clock
	a, b       *purgatory.Breaker
}

func newSkewedPair(t *testing.T, ahead time.Duration, opts ...purgatory.Option) *skewedPair {
	t.Helper()
	t0 := time.Unix(1_700_000_000, 0)
	m := store.NewMemory()
	p := &skewedPair{clkA: clocktest.New(t0), clkB: clocktest.New(t0.Add(ahead))}
	cfg := purgatory.Config{Threshold: 1, TTL: 200 * time.Millisecond, Trials: 1}
	fa := purgatory.NewFactory(append([]purgatory.Option{purgatory.WithStore(m), purgatory.WithClock(p.clkA)}, opts...)...)
	fb := purgatory.NewFactory(append([]purgatory.Option{purgatory.WithStore(m), purgatory.WithClock(p.clkB)}, opts...)...)
	t.Cleanup(func() { fa.Close(); fb.Close() })
	p.a, p.b = fa.Breaker("skewed", cfg), fb.Breaker("skewed", cfg)
	return p
}

// advance moves both clocks by d, in steps of a millisecond.
func (p *skewedPair) advance(d time.Duration) {
	for ; d > 0; d -= time.Millisecond {
		p.clkA.Advance(time.Millisecond)
		p.clkB.Advance(time.Millisecond)
	}
}

// trialOnA trips the circuit in a (the process whose clock is behind),
// lets the open period pass and claims a trial in a.
func (p *skewedPair) trialOnA(t *testing.T) purgatory.Token {
	t.Helper()
	ctx := context.Background()
	tok, err := p.a.Allow(ctx)
	require.NoError(t, err)
	p.a.Done(ctx, tok, errors.New("down"))
	require.Equal(t, purgatory.Open, p.a.State())
	p.advance(300 * time.Millisecond) // past the open period on both clocks
	require.Equal(t, purgatory.HalfOpen, p.a.State())
	trial, err := p.a.Allow(ctx)
	require.NoError(t, err, "a's trial")
	return trial
}

// TestClockSkewWithinBound (finding 101): a process whose clock is behind
// by less than the factory's clock skew (1s by default) claims a trial;
// the other process, whose clock already reads the lease as over, does
// not end it: the trial's success closes the circuit. A trial that never
// reports holds its slot for no less than the TTL, and b ends its lease
// once b's clock is past Until + skew.
func TestClockSkewWithinBound(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ahead time.Duration
		opts  []purgatory.Option
	}{
		{"default 1s, 800ms apart", 800 * time.Millisecond, nil},
		{"default 1s, 1s apart", time.Second, nil},
		{"2s, 1.9s apart", 1900 * time.Millisecond, []purgatory.Option{purgatory.WithClockSkew(2 * time.Second)}},
	} {
		t.Run(tc.name+"/success closes", func(t *testing.T) {
			p := newSkewedPair(t, tc.ahead, tc.opts...)
			trial := p.trialOnA(t)
			p.advance(150 * time.Millisecond)
			require.Equal(t, purgatory.HalfOpen, p.b.State(), "b cut a's lease short")
			p.a.Done(context.Background(), trial, nil)
			assert.Equal(t, purgatory.Closed, p.a.State())
			assert.Equal(t, purgatory.Closed, p.b.State())
		})
		t.Run(tc.name+"/hung trial's lease ends", func(t *testing.T) {
			p := newSkewedPair(t, tc.ahead, tc.opts...)
			p.trialOnA(t)
			p.advance(199 * time.Millisecond)
			require.Equal(t, purgatory.HalfOpen, p.b.State(), "the lease ended before its TTL")
			skew := purgatory.DefaultClockSkew
			if tc.opts != nil {
				skew = 2 * time.Second
			}
			p.advance(skew - tc.ahead + 2*time.Millisecond) // b's clock: past Until + skew
			assert.Equal(t, purgatory.Open, p.b.State(), "a hung trial's lease outlived TTL + skew on b's clock")
			assert.Equal(t, purgatory.Open, p.a.State())
		})
	}
}

// TestClockSkewBeyondBound shows what the bound buys: clocks 1.5s apart
// with the default skew (1s) cut a 200ms lease of the slower process short
// by 500ms, so the faster one ends it at birth and re-opens the circuit;
// the same clocks with WithClockSkew(2s) keep it.
func TestClockSkewBeyondBound(t *testing.T) {
	p := newSkewedPair(t, 1500*time.Millisecond)
	trial := p.trialOnA(t)
	p.advance(time.Millisecond)
	assert.Equal(t, purgatory.Open, p.b.State(), "beyond the bound by more than a TTL, the lease ends at birth")
	p.a.Done(context.Background(), trial, nil) // of a generation that ended: ignored
	assert.Equal(t, purgatory.Open, p.a.State())

	p = newSkewedPair(t, 1500*time.Millisecond, purgatory.WithClockSkew(2*time.Second))
	trial = p.trialOnA(t)
	p.advance(time.Millisecond)
	require.Equal(t, purgatory.HalfOpen, p.b.State())
	p.a.Done(context.Background(), trial, nil)
	assert.Equal(t, purgatory.Closed, p.b.State())
}

func TestWithClockSkewPanicsOutOfRange(t *testing.T) {
	assert.Panics(t, func() { purgatory.WithClockSkew(-time.Second) })
	assert.Panics(t, func() { purgatory.WithClockSkew(8 * 24 * time.Hour) })
	assert.NotPanics(t, func() { purgatory.WithClockSkew(0) })
}

// TestLocalTrialLeaseEnds: a trial slot granted on local state while the
// store failed, whose call never reports, is unknown to the store: once
// the store answers again, the lease's end (Until + the clock skew) must
// still re-open the circuit here and in the store, not leave this process
// rejecting "trial calls in progress" while the store holds no slot (the
// simulator's seed 27965 with the skew rule).
func TestLocalTrialLeaseEnds(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	fs := &failingStore{Memory: store.NewMemory()}
	f := purgatory.NewFactory(purgatory.WithStore(fs), purgatory.WithClock(clk))
	t.Cleanup(func() { f.Close() })
	b := f.Breaker("x", purgatory.Config{Threshold: 1, TTL: 200 * time.Millisecond, Trials: 1})
	ctx := context.Background()
	tok, err := b.Allow(ctx)
	require.NoError(t, err)
	b.Done(ctx, tok, errors.New("down"))
	clk.Advance(200 * time.Millisecond)
	require.Equal(t, purgatory.HalfOpen, b.State())
	fs.setDown(true)
	_, err = b.Allow(ctx) // granted on local state; never reports
	require.NoError(t, err)
	fs.setDown(false)
	_, err = b.Allow(ctx)
	require.Error(t, err, "the one slot is held")
	for range 30 { // well past the lease + the skew + the back-off
		clk.Advance(100 * time.Millisecond)
	}
	_, err = b.Allow(ctx)
	assert.NoError(t, err, "3s after a 200ms lease began, a new trial is let through (state %v)", b.State())
}

// forgeStore is a failingStore whose watch deliveries the test can forge,
// as someone publishing on a Redis store's channel could.
type forgeStore struct {
	*failingStore
	mu  sync.Mutex
	fns map[string]func(store.Snapshot)
}

func (s *forgeStore) Watch(name string, fn func(store.Snapshot)) func() {
	s.mu.Lock()
	if s.fns == nil {
		s.fns = map[string]func(store.Snapshot){}
	}
	s.fns[name] = fn
	s.mu.Unlock()
	return s.failingStore.Watch(name, fn)
}

func (s *forgeStore) forge(name string, snap store.Snapshot) {
	s.mu.Lock()
	fn := s.fns[name]
	s.mu.Unlock()
	fn(snap)
}

// TestReconcileInstallsSteppedBackRecord: a forged message gave a process
// a Seq the record never had; the process then tripped on local state
// (store down) while another process isolated the circuit. Its push
// (Reconcile, base = the forged Seq) loses, and the store's answer, the
// record, has a lower Seq than the process saw: it is the truth and is
// installed, rather than ignored as old, which left the process on its own
// state for ever (the simulator's seeds 5135, 16347, 29682).
func TestReconcileInstallsSteppedBackRecord(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	m := store.NewMemory()
	fs := &forgeStore{failingStore: &failingStore{Memory: m}}
	f := purgatory.NewFactory(purgatory.WithStore(fs), purgatory.WithClock(clk))
	other := purgatory.NewFactory(purgatory.WithStore(m), purgatory.WithClock(clk))
	t.Cleanup(func() { f.Close(); other.Close() })
	cfg := purgatory.Config{Threshold: 1, TTL: time.Hour}
	b := f.Breaker("x", cfg)
	fs.forge("x", store.Snapshot{State: store.Closed, Gen: 1, Seq: 100})
	fs.setDown(true)
	tok, err := b.Allow(context.Background())
	require.NoError(t, err)
	b.Done(context.Background(), tok, errors.New("down")) // open, on local state
	require.Equal(t, purgatory.Open, b.State())
	other.Breaker("x", cfg).Isolate()
	require.Equal(t, purgatory.Open, b.State(), "the isolation's Seq is below the forged one")
	fs.setDown(false)
	clk.Advance(time.Second) // the reconciliation retry
	assert.Equal(t, purgatory.Isolated, b.State(), "the record, as the store answered the push")
}
