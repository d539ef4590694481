package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/internal/redistest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.Stop()
	os.Exit(code)
}

func cfg(id string, fail float64, n int) config {
	// A Redis call that takes longer than its timeout sends the process
	// on alone, locally: 50 ms (the default) is within reach of a loaded
	// CI machine under -race, and then B would not see A's trip.
	return config{id: id, prefix: "example-test:", fail: fail, calls: n, interval: time.Millisecond, threshold: 3, ttl: time.Hour, timeout: 30 * time.Second}
}

// untilRejected is A's output: it ends A's run (cancel) at the first call
// rejected after A reported its own trip, so A makes calls for as long as
// its trip takes to come back from Redis, however slow the machine.
type untilRejected struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	tripped bool
	cancel  context.CancelFunc
}

func (w *untilRejected) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := string(p) // run writes each line with one call
	if strings.Contains(line, "closed -> open") {
		w.tripped = true
	}
	if w.tripped && strings.Contains(line, "rejected without calling") {
		w.cancel()
	}
	return w.buf.Write(p)
}

func (w *untilRejected) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestTwoProcessesShareTheCircuit runs the demo twice against one Redis:
// A's failures trip the circuit and B, whose provider is healthy, is
// rejected all the same.
func TestTwoProcessesShareTheCircuit(t *testing.T) {
	client, prefix := redistest.Client(t)
	var b bytes.Buffer
	ca, cb := cfg("A", 1, 0), cfg("B", 0, 3) // A: calls until stopped
	ca.redis, cb.redis = client.Options().Addr, client.Options().Addr
	ca.prefix, cb.prefix = prefix, prefix
	// On Redis, results reach the store off the caller's path: A's own trip
	// shows one round trip after its third failure (runtime/push.go), and
	// A's calls fail until then, however many that takes on a loaded
	// machine. A's run ends at its first rejection after it reported the
	// trip, which it reports once Redis has answered: the circuit is open
	// in Redis before B starts. (The minute is a bound for a broken build,
	// not a timing.)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := &untilRejected{cancel: cancel}
	ca.interval = 10 * time.Millisecond
	require.NoError(t, run(ctx, ca, a))
	out := a.String()
	require.Contains(t, out, "[A] circuit payments: closed -> open")
	failed, rejected := strings.Count(out, "failed: payment provider"), strings.Count(out, "rejected without calling")
	assert.GreaterOrEqual(t, failed, 3, out)
	require.Positive(t, rejected, out)
	assert.NotContains(t, out[strings.Index(out, "rejected without calling"):], "failed: payment provider",
		"no call goes through once one was rejected (the circuit is open for an hour)")

	require.NoError(t, run(context.Background(), cb, &b))
	assert.Contains(t, b.String(), "[B] circuit payments is open")
	assert.Equal(t, 3, strings.Count(b.String(), "rejected without calling"), b.String())
	assert.NotContains(t, b.String(), ": ok")
}

// TestInMemoryIsNotShared: without -redis, B does not see A's trip.
func TestInMemoryIsNotShared(t *testing.T) {
	var a, b bytes.Buffer
	require.NoError(t, run(context.Background(), cfg("A", 1, 5), &a))
	assert.Contains(t, a.String(), "closed -> open")
	require.NoError(t, run(context.Background(), cfg("B", 0, 3), &b))
	assert.Equal(t, 3, strings.Count(b.String(), ": ok"), b.String())
}

// TestBadFlags: each flag out of range gets an error that names it and
// says what to give, printed with the usage; a good command line parses.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"x"}, `unexpected argument "x": every setting is a flag`},
		{[]string{"-fail", "1.5"}, "-fail 1.5: give a share between 0 and 1"},
		{[]string{"-fail", "-0.1"}, "-fail -0.1: give a share between 0 and 1"},
		{[]string{"-n", "-1"}, "-n -1: give 0 (until interrupted) or more"},
		{[]string{"-every", "-1s"}, "-every -1s: give 0 or more"},
		{[]string{"-threshold", "0"}, "-threshold 0: give 1 or more"},
		{[]string{"-ttl", "0s"}, "-ttl 0s: give a positive duration"},
		{[]string{"-timeout", "0s"}, "-timeout 0s: give a positive duration"},
		{[]string{"-timeout", "-5ms"}, "-timeout -5ms: give a positive duration"},
		{[]string{"-timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"-nosuch"}, "flag provided but not defined: -nosuch"},
	} {
		var out bytes.Buffer
		_, err := parseFlags(tc.args, &out)
		require.Error(t, err, tc.args)
		assert.Contains(t, out.String(), tc.want, tc.args)
		assert.Contains(t, out.String(), "Usage of shared", tc.args)
	}

	var out bytes.Buffer
	c, err := parseFlags([]string{"-redis", "localhost:6379", "-id", "A", "-fail", "1", "-n", "3", "-timeout", "2s"}, &out)
	require.NoError(t, err)
	assert.Empty(t, out.String())
	assert.Equal(t, config{id: "A", redis: "localhost:6379", prefix: "purgatory:", fail: 1, calls: 3,
		interval: 200 * time.Millisecond, threshold: 3, ttl: 10 * time.Second, timeout: 2 * time.Second}, c)
}
