package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// recorder keeps what a watcher was handed.
type recorder struct {
	mu  sync.Mutex
	all []store.Snapshot
}

func (r *recorder) add(s store.Snapshot) {
	r.mu.Lock()
	r.all = append(r.all, s)
	r.mu.Unlock()
}

func (r *recorder) list() []store.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Snapshot(nil), r.all...)
}

// waitSeq waits until the watcher was handed a snapshot with Seq >= seq.
func (r *recorder) waitSeq(t *testing.T, seq uint64, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, s := range r.list() {
			if s.Seq >= seq {
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond, msg)
}

// message formats a snapshot as the script publishes it.
func message(name string, s store.Snapshot) string {
	until := "0"
	if s.State == store.Open || s.State == store.HalfOpen {
		until = formatNanos(s.Until)
	}
	return fmt.Sprintf("2 %s %d %d %d %d %d %s %d %d %d %s", s.State, s.Gen, s.Seq, s.Failures, s.Claimed,
		s.Succeeded, until, s.Level, s.Calls, s.Failed, name)
}

// TestForgedMessages: somebody who can PUBLISH on the channel (but not
// write keys) sends messages that claim a state change, a huge Seq, an
// open period a year long. None reaches a watcher; the watcher gets the
// record. A forged counter change does get through (documented), and the
// next genuine change is then delivered with a Seq past it.
func TestForgedMessages(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	a, b := newStore(t, srv, prefix), newStore(t, srv, prefix)
	attacker := newClient(t, srv)
	const name = "pay"
	_, snap, err := a.Register(ctx, name, testSettings)
	require.NoError(t, err)
	var rec recorder
	defer b.Watch(name, rec.add)()
	waitResynced(t, b)
	rec.waitSeq(t, snap.Seq, "the watch starts with the record")
	now := time.Now()
	opened, err := a.Force(ctx, store.Op{Circuit: name, Settings: testSettings, Gen: snap.Gen, Now: now}, store.Open)
	require.NoError(t, err)
	rec.waitSeq(t, opened.Seq, "the trip reaches the watcher")

	forged := []store.Snapshot{
		{State: store.Closed, Gen: opened.Gen + 5, Seq: opened.Seq + 1},                        // the circuit closed
		{State: store.Closed, Gen: opened.Gen, Seq: opened.Seq + 1},                            // closed in the same generation
		{State: store.Closed, Gen: math.MaxUint32, Seq: 1<<53 - 1},                             // the largest Seq a record may have
		{State: store.Open, Gen: opened.Gen, Seq: opened.Seq + 1, Until: now.AddDate(1, 0, 0)}, // open for a year
		{State: store.Open, Gen: opened.Gen, Seq: opened.Seq + 2, Until: opened.Until},         // a jump
	}
	for _, f := range forged {
		require.NoError(t, attacker.Publish(ctx, b.Channel(), message(name, f)).Err())
	}
	require.NoError(t, attacker.Publish(ctx, b.Channel(), "2 closed 9 9223372036854775807 0 0 0 0 0 0 0 "+name).Err())
	// A genuine change after the forgeries: once it is delivered, every
	// forged message was judged.
	closed, err := a.Force(ctx, store.Op{Circuit: name, Settings: testSettings, Now: now}, store.Closed)
	require.NoError(t, err)
	rec.waitSeq(t, closed.Seq, "the genuine close reaches the watcher")
	for _, s := range rec.list() {
		for _, f := range forged {
			assert.False(t, same(s, f), "a forged message reached the watcher: %+v", s)
		}
		assert.LessOrEqual(t, s.Seq, closed.Seq, "no Seq beyond the record's")
		assert.False(t, s.Until.After(now.Add(testSettings.TTL)), "no open period beyond the TTL")
	}

	// A forged counter change in the known generation is delivered (it
	// cannot change state, generation, Until or Level)...
	fake := closed
	fake.Seq, fake.Failures = closed.Seq+1, 2
	// The forged state changes above made the store read the record: a
	// counter change arriving while such a read is in flight is judged
	// against its answer (the record's Seq, lower), not delivered.
	waitResynced(t, b)
	require.NoError(t, attacker.Publish(ctx, b.Channel(), message(name, fake)).Err())
	rec.waitSeq(t, fake.Seq, "a counter change is delivered unconfirmed")
	// ...and the next genuine change, at the same Seq, is confirmed by a
	// read and given a Seq past the forged one, so that breakers adopt it.
	tripped, err := a.Force(ctx, store.Op{Circuit: name, Settings: testSettings, Now: now}, store.Open)
	require.NoError(t, err)
	require.Equal(t, fake.Seq, tripped.Seq)
	rec.waitSeq(t, fake.Seq+1, "the genuine change is re-announced past the forged Seq")
	last := rec.list()
	var newest store.Snapshot
	for _, s := range last {
		if s.Seq > newest.Seq {
			newest = s
		}
	}
	assert.Equal(t, store.Open, newest.State)
	assert.Equal(t, tripped.Gen, newest.Gen)
	_, rnow, err := a.Register(ctx, name, testSettings)
	require.NoError(t, err)
	assert.Equal(t, rnow.Seq, newest.Seq, "the record itself carries the new Seq")
}

// TestForgedMessagesBreakers: the attacks of issue 10 item 1 against two
// factories: a forged close of an open circuit, a Seq of 2^63-1 and an open
// period a year long change nothing, and an operator's Close still reaches
// every process.
func TestForgedMessagesBreakers(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	fa, fb, _, sb, _, _ := twoFactoriesStores(t, srv, prefix, nil)
	cfg := purgatory.Config{Threshold: 2, TTL: time.Hour}
	a, b := fa.Breaker("forged", cfg), fb.Breaker("forged", cfg)
	// A marker circuit tells when the messages forged below were handled:
	// registered now, so that b's first read of it is over before they are
	// sent (a read still in flight could show the marker before they
	// arrive).
	mcfg := purgatory.Config{Threshold: 1, TTL: time.Hour}
	ma, m := fa.Breaker("marker", mcfg), fb.Breaker("marker", mcfg)
	waitSubscribed(t, srv, prefix, 2)
	waitResynced(t, sb)
	attacker := newClient(t, srv)
	for range 2 {
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
	}
	require.Eventually(t, func() bool { return b.State() == purgatory.Open }, 10*time.Second, time.Millisecond)
	raw := New(attacker, WithPrefix(prefix), WithTimeout(time.Second)) // not the default 50 ms: the machine is shared
	snap, _, err := raw.get(ctx, "forged")
	require.NoError(t, err)
	for _, f := range []string{
		message("forged", store.Snapshot{State: store.Closed, Gen: snap.Gen + 1, Seq: snap.Seq + 1}),
		"2 closed 99 9223372036854775807 0 0 0 0 0 0 0 forged",
		message("forged", store.Snapshot{State: store.Open, Gen: snap.Gen, Seq: snap.Seq + 1, Until: time.Now().AddDate(1, 0, 0)}),
	} {
		require.NoError(t, attacker.Publish(ctx, prefix+"events", f).Err())
	}
	ma.Open()
	require.Eventually(t, func() bool { return m.State() == purgatory.Open }, 10*time.Second, time.Millisecond)
	waitResynced(t, sb) // and the reads of the record they made b ask for are over
	for range 100 {
		require.ErrorIs(t, b.Do(ctx, succeed), purgatory.ErrOpen, "the forged close did not reach b")
	}
	st := b.Status()
	assert.LessOrEqual(t, st.RetryAfter, time.Hour, "no open period beyond the TTL")
	a.Close()
	require.Eventually(t, func() bool { return b.State() == purgatory.Closed }, 10*time.Second, time.Millisecond,
		"the operator's close reaches b despite the forged Seq")
	for range 2 {
		require.ErrorIs(t, b.Do(ctx, fail), errBoom)
	}
	require.Eventually(t, func() bool { return a.State() == purgatory.Open }, 10*time.Second, time.Millisecond,
		"and the circuit still trips")
}

// TestNULName: the names "pay\x00ments" and "pay" are different circuits,
// in keys and in messages.
func TestNULName(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	a, b := newStore(t, srv, prefix), newStore(t, srv, prefix)
	const nul, short = "pay\x00ments", "pay"
	for _, n := range []string{nul, short} {
		_, _, err := a.Register(ctx, n, testSettings)
		require.NoError(t, err)
	}
	var recNul, recShort recorder
	defer b.Watch(nul, recNul.add)()
	defer b.Watch(short, recShort.add)()
	waitSubscribed(t, srv, prefix, 1)
	opened, err := a.Force(ctx, store.Op{Circuit: nul, Settings: testSettings, Now: time.Now()}, store.Open)
	require.NoError(t, err)
	recNul.waitSeq(t, opened.Seq, "the NUL name's watcher sees its trip")
	marker, err := a.Failure(ctx, store.Op{Circuit: short, Settings: testSettings, Gen: 1, Now: time.Now()})
	require.NoError(t, err)
	recShort.waitSeq(t, marker.Seq, "the short name's own change arrives")
	for _, s := range recShort.list() {
		assert.Equal(t, store.Closed, s.State, "pay\\x00ments's trip must not open pay")
	}
	_, got, err := a.Register(ctx, short, testSettings)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State)
	assert.NotEqual(t, a.Key(nul), a.Key(short))
}

// TestHugeForeignField: a 32 MB field somebody else put in a circuit's
// hash is never read: Redis sends the store far less than the field over
// a watch's read and 20 operations (counted by the server, not timed: a
// time bound fails on a loaded machine), and the field is left alone.
// (Within the script, the minimal ACL of TestACL has no HGETALL.)
func TestHugeForeignField(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	s := newStore(t, srv, testPrefix())
	_, snap, err := s.Register(ctx, "big", testSettings)
	require.NoError(t, err)
	huge := strings.Repeat("x", 32<<20)
	require.NoError(t, s.client.HSet(ctx, s.Key("big"), "junk", huge).Err())
	sent := netOutput(t, srv)
	var rec recorder
	defer s.Watch("big", rec.add)()
	rec.waitSeq(t, snap.Seq, "the watcher's read")
	for i := range 20 {
		got, err := s.Failure(ctx, store.Op{Circuit: "big", Settings: testSettings, Gen: snap.Gen, Now: time.Now()})
		require.NoError(t, err, "operation %d", i)
		snap = got
		if snap.State == store.Open {
			snap, err = s.Force(ctx, store.Op{Circuit: "big", Settings: testSettings, Now: time.Now()}, store.Closed)
			require.NoError(t, err)
		}
	}
	assert.Less(t, netOutput(t, srv)-sent, int64(1<<20), "Redis sent the store the foreign field")
	n, err := s.client.HStrLen(ctx, s.Key("big"), "junk").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(len(huge)), n, "the foreign field is not ours to touch")
}

// netOutput returns how many bytes srv has sent its clients in all.
func netOutput(t *testing.T, srv *server) int64 {
	t.Helper()
	info, err := newClient(t, srv).Info(context.Background(), "stats").Result()
	require.NoError(t, err)
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "total_net_output_bytes:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	require.FailNow(t, "no total_net_output_bytes in INFO stats")
	return 0
}
