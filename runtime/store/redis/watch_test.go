package redis

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// Watch across stores, timeouts and Close.

// TestWatchAcrossStores: a change made through one store reaches the
// watchers of another (another process, as far as Redis can tell).
func TestWatchAcrossStores(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	a, b := newStore(t, srv, prefix), newStore(t, srv, prefix)
	_, snap, err := a.Register(ctx, "c", testSettings)
	require.NoError(t, err)

	var mu sync.Mutex
	var seen []store.Snapshot
	stop := b.Watch("c", func(s store.Snapshot) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	})
	last := func() store.Snapshot {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return store.Snapshot{}
		}
		return seen[len(seen)-1]
	}
	// The watch starts with the current record.
	require.Eventually(t, func() bool { return last().Seq == snap.Seq }, 10*time.Second, 5*time.Millisecond)

	// Wait for the subscription and the read that follows it before
	// changing anything: a change made earlier is picked up by the resync
	// instead, which this test does not want to rely on.
	waitResynced(t, b)
	opened, err := a.Force(ctx, store.Op{Circuit: "c", Settings: testSettings, Gen: snap.Gen, Now: time.Unix(1, 0)}, store.Open)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return last().Seq == opened.Seq }, 10*time.Second, 5*time.Millisecond)
	got := last()
	assert.Equal(t, store.Open, got.State)
	assert.Equal(t, opened, got)

	// Other circuits' messages do not reach this watcher; after stop,
	// nothing does.
	_, err = a.Force(ctx, store.Op{Circuit: "other", Settings: testSettings, Now: time.Unix(1, 0)}, store.Open)
	require.NoError(t, err)
	stop()
	_, err = a.Force(ctx, store.Op{Circuit: "c", Settings: testSettings, Now: time.Unix(1, 0)}, store.Closed)
	require.NoError(t, err)
	// A marker change on a circuit watched by a second watcher tells us
	// when every earlier message has been dispatched.
	marker := make(chan struct{}, 1)
	stop2 := b.Watch("marker", func(s store.Snapshot) {
		if s.State == store.Open {
			select {
			case marker <- struct{}{}:
			default:
			}
		}
	})
	defer stop2()
	require.Eventually(t, func() bool {
		_, err := a.Force(ctx, store.Op{Circuit: "marker", Settings: testSettings, Now: time.Unix(1, 0)}, store.Open)
		require.NoError(t, err)
		select {
		case <-marker:
			return true
		default:
			return false
		}
	}, 10*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		assert.LessOrEqual(t, s.Seq, opened.Seq, "no message after stop")
	}
	assert.Equal(t, opened, seen[len(seen)-1])
}

// TestTimeout: a call never waits past the store timeout, whether or not
// the client honours context deadlines itself.
func TestTimeout(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	for _, ctxAware := range []bool{true, false} {
		c := goredis.NewClient(&goredis.Options{Addr: srv.addr(), ContextTimeoutEnabled: ctxAware, MaxRetries: -1})
		prefix := testPrefix()
		s := New(c, WithPrefix(prefix), WithTimeout(20*time.Millisecond))
		require.Equal(t, ctxAware, s.ctxAware)
		// The record is made by a store with a generous timeout: 20 ms is
		// too short for a first call (a new connection) on a loaded machine.
		_, _, err := newStore(t, srv, prefix).Register(ctx, "c", testSettings)
		require.NoError(t, err)

		admin := goredis.NewClient(&goredis.Options{Addr: srv.addr()})
		require.NoError(t, admin.Do(ctx, "CLIENT", "PAUSE", "10000", "WRITE").Err())
		_, err = s.Failure(ctx, store.Op{Circuit: "c", Settings: testSettings, Gen: 1, Now: time.Unix(1, 0)})
		require.Error(t, err, "ctxAware=%v", ctxAware)
		assert.True(t, errors.Is(err, context.DeadlineExceeded) || isTimeout(err), "ctxAware=%v: %v", ctxAware, err)

		// A caller's own deadline applies when it is earlier.
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		_, err = s.Failure(short, store.Op{Circuit: "c", Settings: testSettings, Gen: 1, Now: time.Unix(1, 0)})
		cancel()
		require.Error(t, err)
		require.NoError(t, admin.Do(ctx, "CLIENT", "UNPAUSE").Err())
		require.NoError(t, admin.Close())
		require.NoError(t, s.Close())
		require.NoError(t, c.Close())
	}
}

func TestCloseStopsSubscriber(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	c := newClient(t, srv)
	s := New(c, WithPrefix(prefix), WithTimeout(time.Second)) // not the default 50 ms: the machine is shared
	stop := s.Watch("c", func(store.Snapshot) {})
	waitSubscribed(t, srv, prefix, 1)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice is fine")
	stop()
	require.Eventually(t, func() bool {
		n, err := c.PubSubNumSub(context.Background(), prefix+"events").Result()
		return err == nil && n[prefix+"events"] == 0
	}, 10*time.Second, 5*time.Millisecond, "the subscription ends with Close")
	s.Watch("c", func(store.Snapshot) { t.Error("a closed store delivers nothing") })()
	_, _, err := s.Register(context.Background(), "c", testSettings)
	assert.NoError(t, err, "store calls still work after Close; the client is the caller's")
}

// TestReadOutlivesItsWatch: a read for a watch that ended meanwhile hands
// nothing over, and leaves alone the track a later Watch of the name made
// (which runs its own read). The read is run by hand, in the test's
// goroutine, so that nothing depends on timing.
func TestReadOutlivesItsWatch(t *testing.T) {
	srv := needRedis(t)
	s := newStore(t, srv, testPrefix())
	_, _, err := s.Register(context.Background(), "c", testSettings)
	require.NoError(t, err)

	var got []store.Snapshot
	ended := &track{watchers: map[*watcher]struct{}{}, reading: true}
	later := &track{watchers: map[*watcher]struct{}{{fn: func(snap store.Snapshot) { got = append(got, snap) }}: {}}, reading: true}
	s.mu.Lock()
	s.tracks["c"] = later // the watch that asked for the read ended; another began
	s.mu.Unlock()
	s.wg.Add(1)
	s.confirm("c", ended)
	assert.Empty(t, got, "the later watch's read hands the record over, not this one")
	s.mu.Lock()
	assert.True(t, later.reading, "the later watch's read is still in flight")
	assert.False(t, later.hasKnown)
	s.mu.Unlock()
}

// TestReadDeliversOnce: a read hands the record to the watchers once.
func TestReadDeliversOnce(t *testing.T) {
	srv := needRedis(t)
	s := newStore(t, srv, testPrefix())
	_, snap, err := s.Register(context.Background(), "c", testSettings)
	require.NoError(t, err)

	var got []store.Snapshot
	tr := &track{watchers: map[*watcher]struct{}{{fn: func(snap store.Snapshot) { got = append(got, snap) }}: {}}, reading: true}
	s.mu.Lock()
	s.tracks["c"] = tr
	s.mu.Unlock()
	s.wg.Add(1)
	s.confirm("c", tr)
	require.Len(t, got, 1)
	assert.Equal(t, snap, got[0])
	assert.False(t, tr.reading)
}
