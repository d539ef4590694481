package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// TestDoneContextClaim (issue 16, item 3): a call whose context is done
// already, arriving at a half-open circuit, must not leave the process
// rejecting every later call with no timer to end it: the next caller gets
// its trial.
func TestDoneContextClaim(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	f := purgatory.NewFactory(purgatory.WithStore(newStore(t, srv, testPrefix())), purgatory.WithClock(clk))
	br := f.Breaker("hungup", purgatory.Config{Threshold: 1, TTL: time.Second})
	ctx := context.Background()
	require.ErrorIs(t, br.Do(ctx, fail), errBoom)
	require.Eventually(t, func() bool { return br.State() == purgatory.Open }, 10*time.Second, time.Millisecond)
	clk.Advance(time.Second)
	require.Eventually(t, func() bool { return br.State() == purgatory.HalfOpen }, 10*time.Second, time.Millisecond)

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err := br.Allow(done)
	require.Error(t, err)
	tok, err := br.Allow(ctx)
	require.NoError(t, err, "the next caller gets the trial slot nobody holds")
	br.Done(ctx, tok, nil)
	require.Eventually(t, func() bool { return br.State() == purgatory.Closed }, 10*time.Second, time.Millisecond)
}

// frozenServer starts a redis-server of the test's own, which freeze stops
// with SIGSTOP (as a hung Redis) until thaw.
func frozenServer(t *testing.T) (srv *server, freeze, thaw func()) {
	t.Helper()
	needRedis(t)
	srv, err := startServer(0)
	require.NoError(t, err)
	frozen := false
	thaw = func() {
		if frozen {
			frozen = false
			require.NoError(t, srv.proc.Cmd.Process.Signal(syscall.SIGCONT))
		}
	}
	freeze = func() {
		frozen = true
		require.NoError(t, srv.proc.Cmd.Process.Signal(syscall.SIGSTOP))
	}
	t.Cleanup(func() { thaw(); srv.stop() })
	return srv, freeze, thaw
}

// TestFrozenRedisHoldsNoCaller (issue 16, item 17): while Redis is frozen,
// failing calls return before their own deadline (Done does not wait for
// the store), and the failures of a burst across 64 goroutines reach Redis
// once it thaws, each exactly once, in at most two script calls.
func TestFrozenRedisHoldsNoCaller(t *testing.T) {
	srv, freeze, thaw := frozenServer(t)
	var count commandCounter
	c := newClient(t, srv, &count)
	st := New(c, WithPrefix(testPrefix()), WithTimeout(10*time.Second)) // a long store timeout: a blocked call would show
	t.Cleanup(func() { _ = st.Close() })
	f := purgatory.NewFactory(purgatory.WithStore(st))
	br := f.Breaker("frozen", purgatory.Config{Threshold: 1000, TTL: time.Minute})
	require.NoError(t, br.Do(context.Background(), succeed))

	n := count.n.Load()
	freeze()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var late atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// The runtime bounds store calls at 1 s: a call that waited for
			// one would return after this deadline; the margin is for a
			// loaded machine, on which a goroutine may wait its turn.
			ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
			defer cancel()
			if err := br.Do(ctx, fail); err != errBoom {
				t.Error(err)
			}
			if ctx.Err() != nil {
				late.Add(1) // returned after its own deadline
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Zero(t, late.Load(), "calls held past their deadline by a frozen Redis")
	thaw()
	raw := newClient(t, srv)
	key := st.Key("frozen")
	waitFor(t, func() bool {
		v, _ := raw.HGet(context.Background(), key, "failures").Result()
		return v == "64"
	}, "every failure reaches Redis once")
	waitFor(t, func() bool { return br.Status().Failures == 64 }, "the breaker adopts Redis's count")
	assert.LessOrEqual(t, count.n.Load()-n, int64(2), "the burst is coalesced: at most two script calls")
}

// TestTripWhileFrozenSurvivesThaw (issue 16, item 18): a breaker trips on
// local state while Redis is frozen; the write it gave up on (the first
// failure, timed out) is applied by Redis when it thaws, and its message
// must not revert the local trip: the local open state is pushed instead.
func TestTripWhileFrozenSurvivesThaw(t *testing.T) {
	srv, freeze, thaw := frozenServer(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	prefix := testPrefix()
	st := New(newClient(t, srv), WithPrefix(prefix), WithTimeout(50*time.Millisecond))
	t.Cleanup(func() { _ = st.Close() })
	ev := &events{}
	f := purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk), purgatory.WithListener(ev))
	br := f.Breaker("thaw", purgatory.Config{Threshold: 5, TTL: time.Hour})
	// Not only subscribed: the store's read of the record after it is
	// over, so that the freeze holds the first failure's write, not a read.
	waitResynced(t, st)
	ctx := context.Background()

	freeze()
	require.ErrorIs(t, br.Do(ctx, fail), errBoom)
	waitFor(t, func() bool { return len(ev.of(purgatory.EventStoreError)) > 0 }, "the first failure's write times out")
	for range 4 {
		require.ErrorIs(t, br.Do(ctx, fail), errBoom)
	}
	waitFor(t, func() bool { return br.State() == purgatory.Open }, "the local trip")
	thaw()
	raw := newClient(t, srv)
	key := st.Key("thaw")
	// Redis applies the write the breaker gave up on, if it was sent before
	// the timeout (it is, but for a slow run that was still connecting):
	// wait for it, so that the push below comes after it.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if v, _ := raw.HGet(ctx, key, "failures").Result(); v == "1" {
			break
		}
	}
	waitFor(t, func() bool {
		clk.Advance(time.Second) // past the back-off: the retry pushes the local state
		v, _ := raw.HGet(ctx, key, "state").Result()
		return v == "open"
	}, "the local trip is pushed to Redis")
	assert.Equal(t, purgatory.Open, br.State())
	for _, e := range ev.of(purgatory.EventStateChanged) {
		t.Logf("%v -> %v", e.From, e.To)
		assert.NotEqual(t, purgatory.Closed, e.To, "a write given up on reverted the trip: %v", e)
	}
}

// forge publishes a counter message for the circuit: its record with seq+1
// and the counters changed by change.
func forge(t *testing.T, srv *server, prefix, name string, change func(*store.Snapshot)) {
	t.Helper()
	ctx := context.Background()
	attacker := newClient(t, srv)
	snap, ok, err := New(attacker, WithPrefix(prefix), WithTimeout(time.Second)).get(ctx, name) // not the default 50 ms: the machine is shared
	require.NoError(t, err)
	require.True(t, ok)
	snap.Seq++
	change(&snap)
	require.NoError(t, attacker.Publish(ctx, prefix+"events", message(name, snap)).Err())
}

// waitResynced waits until st confirmed its subscription and read every
// watched record since: a message forged before that could be judged
// against a read still in flight, or be overridden by the read, and never
// be seen.
func waitResynced(t *testing.T, st *Store) {
	t.Helper()
	require.Eventually(t, func() bool {
		h := &st.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.subscribes == 0 {
			return false
		}
		for _, tr := range h.tracks {
			if tr.reading {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "the store's subscription and its reads of the watched records")
}

// TestForgedClaimEndsWithLease (issue 16, item 4): one forged message that
// marks the trial slot taken makes processes reject half-open calls at
// most until the end of the lease: then the store's answer, whose seq is
// lower than the forged one, is believed.
func TestForgedClaimEndsWithLease(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	prefix := testPrefix()
	fa, fb, sa, sb, _, _ := twoFactoriesStores(t, srv, prefix, clk)
	cfg := purgatory.Config{Threshold: 1, TTL: time.Second}
	a, b := fa.Breaker("lease", cfg), fb.Breaker("lease", cfg)
	// A marker circuit tells when both subscribers handled the forged
	// message: registered before it, so that no first read of the marker
	// (which could show it moved before the message arrived) is in flight.
	mcfg := purgatory.Config{Threshold: 1, TTL: time.Hour}
	ma, mb := fa.Breaker("marker", mcfg), fb.Breaker("marker", mcfg)
	waitSubscribed(t, srv, prefix, 2)
	ctx := context.Background()
	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	waitFor(t, func() bool { return a.State() == purgatory.Open && b.State() == purgatory.Open }, "the trip")
	clk.Advance(time.Second)
	waitFor(t, func() bool { return a.State() == purgatory.HalfOpen && b.State() == purgatory.HalfOpen }, "half-open")

	// The reads the state changes asked for are over: the forged message
	// is judged against the record, not against a read in flight.
	waitResynced(t, sa)
	waitResynced(t, sb)
	forge(t, srv, prefix, "lease", func(s *store.Snapshot) { s.Claimed = 1 })
	ma.Open()
	waitFor(t, func() bool { return mb.State() == purgatory.Open }, "the marker reaches b")
	mb.Close()
	waitFor(t, func() bool { return ma.State() == purgatory.Closed }, "the marker reaches a")
	for _, br := range []*purgatory.Breaker{a, b} {
		_, err := br.Allow(ctx)
		require.ErrorIs(t, err, purgatory.ErrOpen, "the forged claim reached both")
	}
	for _, br := range []*purgatory.Breaker{a, b} {
		waitFor(t, func() bool {
			clk.Advance(100 * time.Millisecond) // the lease ends; the store is asked again
			tok, err := br.Allow(ctx)
			if err != nil {
				return false
			}
			br.Done(ctx, tok, nil)
			return true
		}, "a trial is let through after the end of the lease")
	}
}

// TestForgedFailuresCostOneReset (issue 16, item 5): a forged counter
// message with failures pending costs at most one needless reset, not a
// Redis call per success, and Status shows the record's count.
func TestForgedFailuresCostOneReset(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	var count commandCounter
	st := New(newClient(t, srv, &count), WithPrefix(prefix), WithTimeout(time.Second))
	t.Cleanup(func() { _ = st.Close() })
	br := purgatory.NewFactory(purgatory.WithStore(st)).Breaker("resets", purgatory.Config{Threshold: 5, TTL: time.Hour})
	waitResynced(t, st)
	ctx := context.Background()

	forge(t, srv, prefix, "resets", func(s *store.Snapshot) { s.Failures = 4 })
	waitFor(t, func() bool { return br.Status().Failures == 4 }, "the forged count reaches the breaker")
	n := count.n.Load()
	for range 1000 {
		require.NoError(t, br.Do(ctx, succeed))
	}
	waitFor(t, func() bool { return br.Status().Failures == 0 }, "the breaker shows the record's count")
	for range 1000 {
		require.NoError(t, br.Do(ctx, succeed))
	}
	assert.LessOrEqual(t, count.n.Load()-n, int64(2), "Redis calls for 2000 successes after a forged count")
}

// TestSeqStepBack (issue 16, item 6): processes that saw a high seq must
// still follow the record after it is repaired or restored with a lower
// one: a trip by another process reaches every process.
func TestSeqStepBack(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	cfg := purgatory.Config{Threshold: 2, TTL: time.Hour}
	four := func(t *testing.T) (prefix string, bs []*purgatory.Breaker) {
		prefix = testPrefix()
		for range 4 {
			f := purgatory.NewFactory(purgatory.WithStore(newStore(t, srv, prefix)))
			bs = append(bs, f.Breaker("seq", cfg))
		}
		waitSubscribed(t, srv, prefix, 4)
		return prefix, bs
	}
	allSee := func(t *testing.T, bs []*purgatory.Breaker, want purgatory.State, msg string) {
		t.Helper()
		for i, b := range bs {
			waitFor(t, func() bool { return b.State() == want }, fmt.Sprintf("%s: process %d", msg, i))
		}
	}
	settle := func(t *testing.T, bs []*purgatory.Breaker, failures int) {
		t.Helper()
		for i, b := range bs {
			waitFor(t, func() bool { return b.Status().Failures == failures }, fmt.Sprintf("process %d sees %d failures", i, failures))
		}
	}

	t.Run("near 2^53", func(t *testing.T) {
		prefix, bs := four(t)
		raw := newClient(t, srv)
		key := prefix + "{seq}:state"
		require.NoError(t, raw.HSet(ctx, key, "seq", strconv.FormatUint(1<<53-3, 10)).Err())
		require.ErrorIs(t, bs[0].Do(ctx, fail), errBoom)
		settle(t, bs, 1)
		require.NoError(t, bs[0].Do(ctx, succeed))
		settle(t, bs, 0)
		require.ErrorIs(t, bs[0].Do(ctx, fail), errBoom)
		// Every process sees the count before the fourth trips the circuit:
		// results reach Redis from a pusher, so a second failure of the
		// fourth could otherwise find it already open (ErrOpen).
		settle(t, bs, 1)
		require.ErrorIs(t, bs[3].Do(ctx, fail), errBoom)
		allSee(t, bs, purgatory.Open, "the trip by a fourth process reaches the others")
	})

	t.Run("restored below a high seq", func(t *testing.T) {
		prefix, bs := four(t)
		raw := newClient(t, srv)
		key := prefix + "{seq}:state"
		old, err := raw.HGetAll(ctx, key).Result()
		require.NoError(t, err)
		require.NoError(t, raw.HSet(ctx, key, "seq", strconv.FormatUint(1<<52, 10)).Err())
		require.ErrorIs(t, bs[0].Do(ctx, fail), errBoom)
		settle(t, bs, 1)
		// Back to the record of before, without a message (a restore).
		require.NoError(t, raw.Del(ctx, key).Err())
		require.NoError(t, raw.HSet(ctx, key, old).Err())
		for range 2 {
			require.ErrorIs(t, bs[3].Do(ctx, fail), errBoom)
		}
		allSee(t, bs, purgatory.Open, "the trip after the restore reaches every process")
	})
}

// TestRegistrationOnFrozenRedis (issue 16, item 19, documented at
// Factory.Breaker): registering a circuit while Redis is frozen returns,
// bounded by the store timeout, with a breaker that works on local state
// and a store error reported; registering the name again does not wait:
// it sends Redis nothing (counted, not timed: a time bound fails on a
// loaded machine), and every call it could wait for would go to Redis.
func TestRegistrationOnFrozenRedis(t *testing.T) {
	srv, freeze, thaw := frozenServer(t)
	var count commandCounter
	st := New(newClient(t, srv, &count), WithPrefix(testPrefix()), WithTimeout(50*time.Millisecond))
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(thaw) // before the store closes
	ev := &events{}
	// clk stands still: the retry after the store's back-off never comes
	// (it would call the store, and the count below would see it).
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	f := purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithListener(ev), purgatory.WithClock(clk))
	freeze()
	cfg := purgatory.Config{Threshold: 1, TTL: time.Hour}
	br := f.Breaker("frozen-reg", cfg)
	require.NotEmpty(t, ev.of(purgatory.EventStoreError), "the store error is reported")
	require.ErrorIs(t, br.Do(context.Background(), fail), errBoom)
	waitFor(t, func() bool { return br.State() == purgatory.Open }, "the breaker works on local state")
	n := count.n.Load()
	require.Same(t, br, f.Breaker("frozen-reg", cfg))
	assert.Equal(t, n, count.n.Load(), "a second registration of the name called the store")
}

// TestRegistrationsDuringOutage (issue 16, item 19): once a store call of
// the factory failed, more circuits registered within the back-off do not
// wait for the frozen store again (per-key circuits: one wait, not one per
// name); they work on local state and meet Redis after it.
func TestRegistrationsDuringOutage(t *testing.T) {
	srv, freeze, thaw := frozenServer(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	var count commandCounter
	st := New(newClient(t, srv, &count), WithPrefix(testPrefix()), WithTimeout(200*time.Millisecond))
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(thaw) // before the store closes
	f := purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk))
	cfg := purgatory.Config{Threshold: 2, TTL: time.Hour}
	freeze()
	f.Breaker("key/first", cfg) // waits for the store timeout
	// The back-off runs on clk, which stands still: the registrations
	// below come within it, and send Redis nothing (counted, not timed: a
	// time bound fails on a loaded machine); each would wait 200 ms if it
	// called the frozen store.
	n := count.n.Load()
	var bs []*purgatory.Breaker
	for i := range 20 {
		bs = append(bs, f.Breaker(fmt.Sprintf("key/%d", i), cfg))
	}
	require.Equal(t, n, count.n.Load(), "registrations during the outage called the store")
	require.ErrorIs(t, bs[0].Do(context.Background(), fail), errBoom)
	thaw()
	raw := newClient(t, srv)
	waitFor(t, func() bool {
		clk.Advance(2 * time.Second) // past the back-off
		if n, _ := raw.Exists(context.Background(), st.Key("key/0")).Result(); n == 1 {
			return true // never registered: its record comes from its first operation
		}
		_ = bs[0].Do(context.Background(), fail)
		return false
	}, "the circuit registered during the outage meets Redis after it")
}
