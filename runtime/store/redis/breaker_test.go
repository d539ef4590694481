package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

var errBoom = errors.New("boom")

func fail(context.Context) error    { return errBoom }
func succeed(context.Context) error { return nil }

// commandCounter is a go-redis hook that counts the commands a client
// sends, except the handshake of each new pooled connection and the reads a
// store makes to resynchronise its watchers.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commandCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if counted(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			if counted(cmd) {
				c.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

func counted(cmd goredis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select": // a new connection's handshake
		return false
	}
	// The script's read-only "get" (EVALSHA sha 1 key get ...), which a store
	// sends on its own after Watch and reconnections.
	a := cmd.Args()
	return len(a) < 5 || !strings.HasPrefix(cmd.Name(), "eval") || a[4] != "get"
}

// events records a factory's events.
type events struct {
	mu  sync.Mutex
	all []purgatory.Event
}

func (e *events) OnEvent(ev purgatory.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) of(kind purgatory.EventKind) []purgatory.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []purgatory.Event
	for _, ev := range e.all {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// TestZeroRoundTrips proves with a command-counting hook that a closed
// success and an open rejection do not touch Redis, and a failure makes one
// call.
func TestZeroRoundTrips(t *testing.T) {
	srv := needRedis(t)
	var count commandCounter
	st := newStore(t, srv, testPrefix(), &count)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	f := purgatory.NewFactory(purgatory.WithStore(st), purgatory.WithClock(clk))
	b := f.Breaker("payments", purgatory.Config{Threshold: 3, TTL: time.Minute})
	ctx := context.Background()

	n := count.n.Load()
	for range 1000 {
		require.NoError(t, b.Do(ctx, succeed))
	}
	assert.Equal(t, n, count.n.Load(), "closed successes make no Redis call")

	require.ErrorIs(t, b.Do(ctx, fail), errBoom)
	// Results reach Redis off the caller's path (the pusher): wait for them.
	waitFor(t, func() bool { return b.Status().Failures == 1 }, "the failure reaches Redis")
	assert.Equal(t, n+1, count.n.Load(), "a failure makes one Redis call")
	require.NoError(t, b.Do(ctx, succeed))
	waitFor(t, func() bool { return b.Status().Failures == 0 }, "the reset reaches Redis")
	assert.Equal(t, n+2, count.n.Load(), "a success with failures pending makes one Redis call (the reset)")
	require.NoError(t, b.Do(ctx, succeed))
	assert.Equal(t, n+2, count.n.Load())

	for range 3 {
		require.ErrorIs(t, b.Do(ctx, fail), errBoom)
	}
	waitFor(t, func() bool { return b.State() == purgatory.Open }, "the trip")
	n = count.n.Load()
	for range 1000 {
		require.ErrorIs(t, b.Do(ctx, succeed), purgatory.ErrOpen)
	}
	assert.Equal(t, n, count.n.Load(), "open rejections make no Redis call")
}

// twoFactories returns two factories, each on its own client and store (as
// two processes would have), sharing one Redis, prefix and clk.
func twoFactories(t *testing.T, srv *server, prefix string, clk purgatory.Clock, opts ...Option) (a, b *purgatory.Factory, ea, eb *events) {
	ea, eb = &events{}, &events{}
	mk := func(ev *events) *purgatory.Factory {
		st := New(newClient(t, srv), append([]Option{WithPrefix(prefix), WithTimeout(time.Second)}, opts...)...)
		t.Cleanup(func() { _ = st.Close() })
		fo := []purgatory.Option{purgatory.WithStore(st), purgatory.WithListener(ev)}
		if clk != nil {
			fo = append(fo, purgatory.WithClock(clk))
		}
		return purgatory.NewFactory(fo...)
	}
	return mk(ea), mk(eb), ea, eb
}

func TestTripRejectsInOtherFactory(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	fa, fb, _, _ := twoFactories(t, srv, prefix, nil)
	cfg := purgatory.Config{Threshold: 3, TTL: time.Minute}
	a, b := fa.Breaker("pay", cfg), fb.Breaker("pay", cfg)
	ctx := context.Background()
	waitSubscribed(t, srv, prefix, 2)

	for range 2 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	waitFor(t, func() bool { return a.Status().Failures == 2 }, "a's failures reach Redis")
	require.ErrorIs(t, b.Do(ctx, fail), errBoom, "failures from both add up")
	waitFor(t, func() bool { return b.State() == purgatory.Open }, "the trip")
	require.Eventually(t, func() bool { return a.State() == purgatory.Open }, 5*time.Second, time.Millisecond)

	// And the other way round, timing how long the news takes.
	a.Close()
	require.Eventually(t, func() bool { return b.State() == purgatory.Closed }, 5*time.Second, time.Millisecond)
	start := time.Now()
	for range 3 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	require.Eventually(t, func() bool {
		return errors.Is(b.Do(ctx, succeed), purgatory.ErrOpen)
	}, 5*time.Second, time.Millisecond, "a trip in one factory rejects calls in the other")
	t.Logf("the other factory rejected %v after the trip (including the trip's 3 round trips)", time.Since(start))
	var oe *purgatory.OpenError
	require.ErrorAs(t, b.Do(ctx, succeed), &oe)
	assert.Equal(t, "pay", oe.Circuit)
}

// waitSubscribed waits until the channel of the stores with prefix on srv
// has at least n subscribers (each store subscribes once).
func waitSubscribed(t *testing.T, srv *server, prefix string, n int) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.addr()})
	defer c.Close()
	require.Eventually(t, func() bool {
		m, err := c.PubSubNumSub(context.Background(), prefix+"events").Result()
		return err == nil && m[prefix+"events"] >= int64(n)
	}, 10*time.Second, 5*time.Millisecond)
}

func TestHalfOpenTrialsExclusiveAcrossFactories(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	prefix := testPrefix()
	fa, fb, _, _ := twoFactories(t, srv, prefix, clk)
	cfg := purgatory.Config{Threshold: 1, TTL: 30 * time.Second, Trials: 2}
	a, b := fa.Breaker("trials", cfg), fb.Breaker("trials", cfg)
	ctx := context.Background()

	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	require.Eventually(t, func() bool { return a.State() == purgatory.Open && b.State() == purgatory.Open }, 5*time.Second, time.Millisecond)
	clk.Advance(30 * time.Second)
	require.Eventually(t, func() bool {
		return a.State() == purgatory.HalfOpen && b.State() == purgatory.HalfOpen
	}, 5*time.Second, time.Millisecond)

	// Trials=2 across both factories: two slots, whoever asks.
	ta, err := a.Allow(ctx)
	require.NoError(t, err)
	tb, err := b.Allow(ctx)
	require.NoError(t, err)
	_, err = a.Allow(ctx)
	require.ErrorIs(t, err, purgatory.ErrOpen, "both slots are taken")
	_, err = b.Allow(ctx)
	require.ErrorIs(t, err, purgatory.ErrOpen, "both slots are taken")

	a.Done(ctx, ta, nil)
	assert.Equal(t, purgatory.HalfOpen, a.State(), "one success of two")
	b.Done(ctx, tb, nil)
	waitFor(t, func() bool { return b.State() == purgatory.Closed }, "two successful trials close it")
	require.Eventually(t, func() bool { return a.State() == purgatory.Closed }, 5*time.Second, time.Millisecond)
}

func TestConfigConflictAcrossFactories(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	fa, fb, ea, eb := twoFactories(t, srv, prefix, nil)
	a := fa.Breaker("conf", purgatory.Config{Threshold: 3, TTL: time.Minute})
	b := fb.Breaker("conf", purgatory.Config{Threshold: 7, TTL: time.Minute})
	assert.Empty(t, ea.of(purgatory.EventConfigConflict))
	conflicts := eb.of(purgatory.EventConfigConflict)
	require.Len(t, conflicts, 1)
	assert.Equal(t, "conf", conflicts[0].Circuit)
	assert.Equal(t, 3, conflicts[0].Config.Threshold, "the event carries the configuration in force")
	assert.Equal(t, 3, b.Config().Threshold, "the first registration, in another process, wins")
	assert.Equal(t, 3, a.Config().Threshold)
}

// TestSecondProcess runs a real second OS process (this test binary again,
// see TestHelperProcess) on the same Redis: it trips the circuit, this
// process sees it open; this process closes it, the child sees it closed.
func TestSecondProcess(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	st := newStore(t, srv, prefix)
	f := purgatory.NewFactory(purgatory.WithStore(st))
	b := f.Breaker("shared", purgatory.Config{Threshold: 3, TTL: time.Hour})
	ctx := context.Background()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "PURGATORY_REDIS_ADDR="+srv.addr(), "PURGATORY_REDIS_PREFIX="+prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "the child exited before saying %q", want)
				if l == want {
					return
				}
			case <-timeout:
				require.FailNow(t, "the child did not say "+want)
			}
		}
	}
	expect("ready")
	assert.Equal(t, purgatory.Closed, b.State())
	expect("tripped")
	require.Eventually(t, func() bool { return errors.Is(b.Do(ctx, succeed), purgatory.ErrOpen) },
		5*time.Second, time.Millisecond, "the child's trip rejects calls here")
	b.Close()
	expect("closed")
	require.NoError(t, cmd.Wait())
}

// TestHelperProcess is the child of TestSecondProcess; it does nothing in a
// normal run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("the child process of TestSecondProcess")
	}
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv("PURGATORY_REDIS_ADDR"), ContextTimeoutEnabled: true})
	defer c.Close()
	st := New(c, WithPrefix(os.Getenv("PURGATORY_REDIS_PREFIX")), WithTimeout(time.Second))
	defer st.Close()
	f := purgatory.NewFactory(purgatory.WithStore(st))
	b := f.Breaker("shared", purgatory.Config{Threshold: 3, TTL: time.Hour})
	ctx := context.Background()
	if b.State() != purgatory.Closed {
		t.Fatalf("child: state %v at start", b.State())
	}
	waitSubscribed(t, &server{port: portOf(t, os.Getenv("PURGATORY_REDIS_ADDR"))}, os.Getenv("PURGATORY_REDIS_PREFIX"), 2)
	fmt.Println("ready")
	for range 3 {
		_ = b.Do(ctx, fail)
	}
	for deadline := time.Now().Add(10 * time.Second); b.State() != purgatory.Open && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // the failures reach Redis off the caller's path
	}
	if b.State() != purgatory.Open {
		t.Fatalf("child: state %v after 3 failures", b.State())
	}
	fmt.Println("tripped")
	deadline := time.Now().Add(20 * time.Second)
	for b.State() != purgatory.Closed {
		if time.Now().After(deadline) {
			t.Fatal("child: the parent's close never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("closed")
}

func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	var n int
	_, err = fmt.Sscan(p, &n)
	require.NoError(t, err)
	return n
}

// TestRedisGoesAway stops redis-server mid-run: calls keep working on local
// state and the store error is reported once; when it is back on the same
// port, the stores reconnect and share state again.
func TestRedisGoesAway(t *testing.T) {
	needRedis(t)
	srv, err := startServer(0)
	require.NoError(t, err)
	t.Cleanup(func() { srv.stop() })
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	prefix := testPrefix()
	fa, fb, ea, eb := twoFactories(t, srv, prefix, clk, WithTimeout(100*time.Millisecond))
	cfg := purgatory.Config{Threshold: 3, TTL: time.Minute}
	a, b := fa.Breaker("flaky", cfg), fb.Breaker("flaky", cfg)
	ctx := context.Background()
	waitSubscribed(t, srv, prefix, 2)

	srv.stop()
	for range 2 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom, "calls go on while Redis is down")
	}
	for range 100 {
		require.NoError(t, a.Do(ctx, succeed))
	}
	for range 3 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "the breaker trips on its local state")
	require.ErrorIs(t, a.Do(ctx, succeed), purgatory.ErrOpen)
	clk.Advance(2 * time.Second) // past the breaker's back-off: it tries the store again
	for range 3 {
		require.ErrorIs(t, a.Do(ctx, succeed), purgatory.ErrOpen)
	}
	a.Close()
	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	waitFor(t, func() bool { return len(ea.of(purgatory.EventStoreError)) > 0 }, "the store error is reported")
	storeErrs := ea.of(purgatory.EventStoreError)
	require.Len(t, storeErrs, 1, "one store error per episode, not one per call")
	assert.Equal(t, "flaky", storeErrs[0].Circuit)

	restarted, err := startServer(srv.port)
	require.NoError(t, err)
	t.Cleanup(func() { restarted.stop() })
	waitSubscribed(t, restarted, prefix, 2) // both stores subscribed again by themselves

	// The record was lost with the server; the next store call recreates
	// it and both factories agree again.
	clk.Advance(2 * time.Second)
	a.Close()
	require.Equal(t, purgatory.Closed, a.State())
	for range 3 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip")
	require.Eventually(t, func() bool { return errors.Is(b.Do(ctx, succeed), purgatory.ErrOpen) },
		5*time.Second, time.Millisecond, "state syncs through the restarted Redis")
	assert.Len(t, ea.of(purgatory.EventStoreError), 1, "no new episode once Redis is back")
	assert.Empty(t, eb.of(purgatory.EventStoreError), "b made no store call while Redis was down")
}

// TestResyncAfterReconnect: a change the subscriber missed (made without a
// message, while its connection was down) reaches the watchers when the
// subscription comes back.
func TestResyncAfterReconnect(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	st := newStore(t, srv, prefix)
	ctx := context.Background()
	_, snap, err := st.Register(ctx, "c", testSettings)
	require.NoError(t, err)
	got := make(chan store.Snapshot, 64)
	defer st.Watch("c", func(s store.Snapshot) { got <- s })()
	waitSubscribed(t, srv, prefix, 1)

	// Change the record behind the store's back: no message is published.
	require.NoError(t, st.client.HSet(ctx, st.Key("c"), "state", "open", "gen", "9", "seq", "999999999999999",
		"until", "5000000000").Err())
	admin := newClient(t, srv)
	require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-got:
			if s.Seq != 999999999999999 {
				assert.Equal(t, snap.Seq, s.Seq, "only the initial read or the missed change")
				continue
			}
			assert.Equal(t, store.Snapshot{State: store.Open, Gen: 9, Seq: 999999999999999, Until: time.Unix(5, 0)}, s)
			return
		case <-timeout:
			require.FailNow(t, "the missed change never reached the watcher")
		}
	}
}

// TestGarbageInCircuitKey: a foreign value in a circuit's key is reported
// to listeners as a store error naming the key; nothing panics and calls go
// on.
func TestGarbageInCircuitKey(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	prefix := testPrefix()
	fa, _, ea, _ := twoFactories(t, srv, prefix, clk)
	a := fa.Breaker("junk", purgatory.Config{Threshold: 3, TTL: time.Minute})
	ctx := context.Background()
	raw := newClient(t, srv)
	key := prefix + "{junk}:state"
	require.NoError(t, raw.Set(ctx, key, "not a circuit", 0).Err())
	// Junk on the channel too: ignored by subscribers.
	require.NoError(t, raw.Publish(ctx, strings.TrimSuffix(key, "{junk}:state")+"events", "1 open x y").Err())

	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	waitFor(t, func() bool { return len(ea.of(purgatory.EventStoreError)) > 0 }, "the corrupt record is reported")
	errs := ea.of(purgatory.EventStoreError)
	require.Len(t, errs, 1)
	var ce *CorruptError
	require.ErrorAs(t, errs[0].Err, &ce)
	assert.Equal(t, key, ce.Key)
	assert.Contains(t, errs[0].Err.Error(), key)
	for range 10 {
		require.NoError(t, a.Do(ctx, succeed))
	}
	// The record was replaced by a fresh one; the breaker uses it again
	// after its back-off.
	clk.Advance(2 * time.Second)
	for i := 0; i < 3 && a.State() != purgatory.Open; i++ {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip")
	typ, err := raw.Type(ctx, key).Result()
	require.NoError(t, err)
	assert.Equal(t, "hash", typ)
	state, err := raw.HGet(ctx, key, "state").Result()
	require.NoError(t, err)
	assert.Equal(t, "open", state)
}

// TestSlowRedis: while Redis does not answer (paused), calls are not held
// past the store timeout: they go on with local state, and the store error
// is reported once. When Redis answers again the breaker uses it again.
func TestSlowRedis(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	prefix := testPrefix()
	fa, fb, ea, _ := twoFactories(t, srv, prefix, clk, WithTimeout(20*time.Millisecond))
	cfg := purgatory.Config{Threshold: 3, TTL: time.Minute}
	a, b := fa.Breaker("slow", cfg), fb.Breaker("slow", cfg)
	ctx := context.Background()
	waitSubscribed(t, srv, prefix, 2)

	admin := newClient(t, srv)
	require.NoError(t, admin.Do(ctx, "CLIENT", "PAUSE", "10000", "WRITE").Err())
	unpaused := false
	unpause := func() {
		if !unpaused {
			unpaused = true
			require.NoError(t, admin.Do(ctx, "CLIENT", "UNPAUSE").Err())
		}
	}
	t.Cleanup(unpause)
	for range 3 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "tripped on local state")
	errs := ea.of(purgatory.EventStoreError)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0].Err, context.DeadlineExceeded)
	assert.Equal(t, purgatory.Closed, b.State(), "the trip did not reach Redis")
	unpause()

	clk.Advance(2 * time.Second) // past the breaker's back-off
	a.Open()
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 5*time.Second, time.Millisecond,
		"once Redis answers, changes are shared again")
	assert.Len(t, ea.of(purgatory.EventStoreError), 1)
}

// TestRevertedRecord: Redis goes back in time (restarted from an older
// snapshot, or failed over to a replica that missed writes). The breakers'
// generation is now ahead of the record's; the first operation they send
// re-announces the record with a newer seq, so that they all adopt it
// instead of staying open, waiting for a generation that never comes.
func TestRevertedRecord(t *testing.T) {
	srv := needRedis(t)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	prefix := testPrefix()
	fa, fb, _, _ := twoFactories(t, srv, prefix, clk)
	cfg := purgatory.Config{Threshold: 1, TTL: time.Minute}
	a, b := fa.Breaker("rev", cfg), fb.Breaker("rev", cfg)
	ctx := context.Background()
	raw := newClient(t, srv)
	key := prefix + "{rev}:state"
	snapshot, err := raw.HGetAll(ctx, key).Result()
	require.NoError(t, err)

	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip")
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 5*time.Second, time.Millisecond)

	// Back to the closed record of before the trip, without a message.
	require.NoError(t, raw.Del(ctx, key).Err())
	require.NoError(t, raw.HSet(ctx, key, snapshot).Err())
	clk.Advance(time.Minute) // both try to expire their open generation
	assert.Equal(t, purgatory.Closed, a.State(), "the record in Redis wins")
	require.Eventually(t, func() bool { return b.State() == purgatory.Closed }, 5*time.Second, time.Millisecond)

	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip")
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 5*time.Second, time.Millisecond,
		"and the circuit is shared again")
}

// waitFor waits until cond holds: results reach Redis off the caller's
// path, one round trip after the call (see runtime/push.go).
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, msg)
}
