package main

import (
	"bytes"
	"context"
	"os"
	"strings"
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
	return config{id: id, prefix: "example-test:", fail: fail, calls: n, interval: time.Millisecond, threshold: 3, ttl: time.Hour}
}

// TestTwoProcessesShareTheCircuit runs the demo twice against one Redis:
// A's failures trip the circuit and B, whose provider is healthy, is
// rejected all the same.
func TestTwoProcessesShareTheCircuit(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	var a, b bytes.Buffer
	ca, cb := cfg("A", 1, 5), cfg("B", 0, 3)
	ca.redis, cb.redis = client.Options().Addr, client.Options().Addr
	ca.prefix, cb.prefix = prefix, prefix
	// On Redis, results reach the store off the caller's path: A's own trip
	// shows one round trip after its third failure (runtime/push.go). Calls
	// 50 ms apart leave it that round trip; a fourth failure is what the
	// docs allow if the machine is slower still.
	ca.interval = 50 * time.Millisecond
	require.NoError(t, run(ctx, ca, &a))
	assert.Contains(t, a.String(), "[A] circuit payments: closed -> open")
	failed, rejected := strings.Count(a.String(), "failed: payment provider"), strings.Count(a.String(), "rejected without calling")
	assert.GreaterOrEqual(t, failed, 3, a.String())
	assert.LessOrEqual(t, failed, 4, a.String())
	assert.Equal(t, 5, failed+rejected, a.String())

	require.NoError(t, run(ctx, cb, &b))
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
