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
	"path/filepath"
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

	sock   string        // its unix socket, which only it can have opened
	exited chan struct{} // closed once Cmd.Wait returned
}

// Addr returns the server's address.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Kill kills the server (as a crash would) and waits for it to exit.
func (s *Server) Kill() {
	_ = s.Cmd.Process.Kill()
	<-s.exited
	_ = os.Remove(s.sock)
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
// answers PING (NOAUTH counts as an answer). A free port can be taken
// between FreePort and the server's bind (by another test binary's
// server): with port 0, Start then tries another one.
func Start(port int, args ...string) (*Server, error) {
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = FreePort(); err != nil {
				return nil, err
			}
		}
		s, err := start(p, args)
		if err == nil || port != 0 || attempt == 5 {
			return s, err
		}
	}
}

var socks atomic.Int64

// start starts redis-server on port and waits until it answers on its
// unix socket. Redis binds every listener before it serves any, and exits
// if one fails: an answer there means the TCP port is this server's, not
// another process's that took the port first.
func start(port int, args []string) (*Server, error) {
	sock := filepath.Join(os.TempDir(), fmt.Sprintf("redistest-%d-%d.sock", os.Getpid(), socks.Add(1)))
	args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--unixsocket", sock,
		"--save", "", "--appendonly", "no"}, args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Port: port, Cmd: cmd, sock: sock, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	c := goredis.NewClient(&goredis.Options{Network: "unix", Addr: sock, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") {
			return s, nil
		}
		select {
		case <-s.exited:
			_ = os.Remove(sock)
			return nil, fmt.Errorf("redis-server on port %d exited at start (port taken?): %w", port, err)
		default:
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
