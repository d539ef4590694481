// Package redistest starts real redis-servers for tests: a shared one per
// test binary for the integration packages (httpcircuit, grpccircuit, the
// simulator), on a free loopback port, killed when the binary's tests end
// ([Client], [Stop]); and, for the store's own tests, servers of their own
// ([Start]).
package redistest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/purgatory-go/purgatory/internal/testbin"
)

// InstallHint is the message of a test skipped for want of redis-server.
const InstallHint = "redis-server not found: apt-get install -y redis-server (tests skip without it unless CI=true)"

// Server is a redis-server child process.
type Server struct {
	Port int
	Cmd  *exec.Cmd
}

// Addr returns the server's address.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Kill kills the server (as a crash would) and waits for it to exit.
func (s *Server) Kill() {
	_ = s.Cmd.Process.Kill()
	_ = s.Cmd.Wait()
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts redis-server on port (a free one if 0), without
// persistence, with more command-line arguments, and waits until it
// answers PING (NOAUTH counts as an answer).
func Start(port int, args ...string) (*Server, error) {
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Port: port, Cmd: cmd}
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	once    sync.Once
	shared  *Server
	errInit error
	seq     atomic.Int64
)

// Client returns a client of the shared redis-server, closed at the end of
// the test, and a key prefix no other test uses. Without redis-server the
// test is skipped, or fails when CI=true.
func Client(t testing.TB) (*goredis.Client, string) {
	t.Helper()
	testbin.Need(t, "redis-server", "redis-server")
	once.Do(func() { shared, errInit = Start(0) })
	if errInit != nil {
		t.Fatal(errInit)
	}
	c := goredis.NewClient(&goredis.Options{Addr: shared.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c, fmt.Sprintf("test%d-%d:", os.Getpid(), seq.Add(1))
}

// Stop kills the shared server, if one was started. Call it from TestMain
// after m.Run.
func Stop() {
	if shared != nil {
		shared.Kill()
	}
}
