package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
	a, b, _, _, ea, eb = twoFactoriesStores(t, srv, prefix, clk, opts...)
	return a, b, ea, eb
}

// twoFactoriesStores is twoFactories that also returns each factory's
// store (for waitResynced).
func twoFactoriesStores(t *testing.T, srv *server, prefix string, clk purgatory.Clock, opts ...Option) (a, b *purgatory.Factory, sa, sb *Store, ea, eb *events) {
	ea, eb = &events{}, &events{}
	mk := func(ev *events) (*purgatory.Factory, *Store) {
		st := New(newClient(t, srv), append([]Option{WithPrefix(prefix), WithTimeout(time.Second)}, opts...)...)
		t.Cleanup(func() { _ = st.Close() })
		fo := []purgatory.Option{purgatory.WithStore(st), purgatory.WithListener(ev)}
		if clk != nil {
			fo = append(fo, purgatory.WithClock(clk))
		}
		return purgatory.NewFactory(fo...), st
	}
	a, sa = mk(ea)
	b, sb = mk(eb)
	return a, b, sa, sb, ea, eb
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
	require.Eventually(t, func() bool { return a.State() == purgatory.Open }, 10*time.Second, time.Millisecond)

	// And the other way round, timing how long the news takes.
	a.Close()
	require.Eventually(t, func() bool { return b.State() == purgatory.Closed }, 10*time.Second, time.Millisecond)
	start := time.Now()
	for range 3 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	// Watched by b's state, not by calls: a success of b's, once b has
	// seen a failure of a's, resets the shared count, and would land
	// between a's failures still on their way (the circuit never trips).
	require.Eventually(t, func() bool { return b.State() == purgatory.Open },
		10*time.Second, time.Millisecond, "a trip in one factory reaches the other")
	t.Logf("the other factory saw the trip %v after it (including the trip's 3 round trips)", time.Since(start))
	require.ErrorIs(t, b.Do(ctx, succeed), purgatory.ErrOpen, "a trip in one factory rejects calls in the other")
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
	require.Eventually(t, func() bool { return a.State() == purgatory.Open && b.State() == purgatory.Open }, 10*time.Second, time.Millisecond)
	clk.Advance(30 * time.Second)
	require.Eventually(t, func() bool {
		return a.State() == purgatory.HalfOpen && b.State() == purgatory.HalfOpen
	}, 10*time.Second, time.Millisecond)

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
	require.Eventually(t, func() bool { return a.State() == purgatory.Closed }, 10*time.Second, time.Millisecond)
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
	require.Equal(t, purgatory.Closed, b.State())

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
	// The child trips the circuit as soon as it said "ready": this
	// process's state is checked before (see the start of the test).
	expect("ready")
	expect("tripped")
	require.Eventually(t, func() bool { return errors.Is(b.Do(ctx, succeed), purgatory.ErrOpen) },
		10*time.Second, time.Millisecond, "the child's trip rejects calls here")
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

// waitFor waits until cond holds: results reach Redis off the caller's
// path, one round trip after the call (see runtime/push.go).
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, msg)
}
