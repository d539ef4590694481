// Package redistest starts a real redis-server for the tests of the
// integration packages (httpcircuit, grpccircuit): one per test binary, on
// a free loopback port, killed when the binary's tests end.
package redistest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// InstallHint is the message of a test skipped for want of redis-server.
const InstallHint = "redis-server not found: apt-get install -y redis-server (tests skip without it unless CI=true)"

var (
	once    sync.Once
	addr    string
	cmd     *exec.Cmd
	errInit error
	seq     atomic.Int64
)

// Client returns a client of the shared redis-server, closed at the end of
// the test, and a key prefix no other test uses. Without redis-server the
// test is skipped, or fails when CI=true.
func Client(t testing.TB) (*goredis.Client, string) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(InstallHint)
		}
		t.Skip(InstallHint)
	}
	once.Do(start)
	if errInit != nil {
		t.Fatal(errInit)
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c, fmt.Sprintf("test%d-%d:", os.Getpid(), seq.Add(1))
}

// Stop kills the server, if one was started. Call it from TestMain after
// m.Run.
func Stop() {
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

func start() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		errInit = err
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	addr = "127.0.0.1:" + strconv.Itoa(port)
	cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if errInit = cmd.Start(); errInit != nil {
		cmd = nil
		return
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			errInit = fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
