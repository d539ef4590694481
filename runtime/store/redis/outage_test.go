package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// Breakers sharing Redis when Redis goes away, answers slowly, holds garbage or goes back in time.

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
	// A generous store timeout: while Redis is down calls fail at once
	// (connection refused), and after it is back the first one dials anew,
	// which must not time out on a loaded machine (a second episode).
	fa, fb, ea, eb := twoFactories(t, srv, prefix, clk)
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
		10*time.Second, time.Millisecond, "state syncs through the restarted Redis")
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
	// Results reach Redis from the pusher: the circuit may trip between a
	// look at its state and the next call, which then gets ErrOpen.
	for range 3 {
		err := a.Do(ctx, fail)
		if errors.Is(err, purgatory.ErrOpen) {
			break
		}
		require.ErrorIs(t, err, errBoom)
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
	// The pause lasts 10 s: a store timeout of 1 s still runs out while it
	// holds, and is enough for a.Open after it (a new connection, on a
	// loaded machine), which must not start a second episode.
	fa, fb, ea, _ := twoFactories(t, srv, prefix, clk)
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
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 10*time.Second, time.Millisecond,
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
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 10*time.Second, time.Millisecond)

	// Back to the closed record of before the trip, without a message.
	require.NoError(t, raw.Del(ctx, key).Err())
	require.NoError(t, raw.HSet(ctx, key, snapshot).Err())
	clk.Advance(time.Minute) // both try to expire their open generation
	assert.Equal(t, purgatory.Closed, a.State(), "the record in Redis wins")
	require.Eventually(t, func() bool { return b.State() == purgatory.Closed }, 10*time.Second, time.Millisecond)

	require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip")
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 10*time.Second, time.Millisecond,
		"and the circuit is shared again")
}
