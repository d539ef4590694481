package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startRedis starts a redis-server on a free loopback port for the test.
func startRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found: apt-get install -y redis-server")
		}
		t.Skip("redis-server not found: apt-get install -y redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	require.Eventually(t, func() bool { return c.Ping(context.Background()).Err() == nil }, 10*time.Second, 20*time.Millisecond)
	return addr
}

func cfg(id string, fail float64, n int) config {
	return config{id: id, prefix: "example-test:", fail: fail, calls: n, interval: time.Millisecond, threshold: 3, ttl: time.Hour}
}

// TestTwoProcessesShareTheCircuit runs the demo twice against one Redis:
// A's failures trip the circuit and B, whose provider is healthy, is
// rejected all the same.
func TestTwoProcessesShareTheCircuit(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	var a, b bytes.Buffer
	ca, cb := cfg("A", 1, 5), cfg("B", 0, 3)
	ca.redis, cb.redis = addr, addr
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
