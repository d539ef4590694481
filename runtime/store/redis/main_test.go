package redis

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/internal/redistest"
	"github.com/purgatory-go/purgatory/internal/testbin"
)

// helperEnv, when set, makes the test binary a child process of
// TestSecondProcess (see TestHelperProcess) instead of starting Redis.
const helperEnv = "PURGATORY_REDIS_HELPER"

const installHint = redistest.InstallHint

// shared is the redis-server most tests use; nil when the binary is missing.
var shared *server

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run())
	}
	if _, err := testbin.Find("redis-server", "redis-server"); err != nil {
		if testbin.InCI() {
			fmt.Fprintln(os.Stderr, "CI=true:", err)
			os.Exit(1)
		}
		os.Exit(m.Run()) // every test skips with installHint
	}
	s, err := startServer(0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	s.stop()
	os.Exit(code)
}

// server is a redis-server child process.
type server struct {
	port int
	proc *redistest.Server
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) { return redistest.FreePort() }

// startServer starts redis-server on port (a free one if 0), with more
// command-line arguments, and waits until it answers PING.
func startServer(port int, args ...string) (*server, error) {
	s, err := redistest.Start(port, args...)
	if err != nil {
		return nil, err
	}
	return &server{port: s.Port, proc: s}, nil
}

// stop kills the server (as a crash would) and waits for it to exit.
func (s *server) stop() {
	s.proc.Kill()
}

// needRedis skips the test when redis-server is missing.
func needRedis(t testing.TB) *server {
	t.Helper()
	if shared == nil {
		t.Skip(installHint)
	}
	return shared
}

// prefixSeq makes each test's keys distinct on the shared server.
var prefixSeq atomic.Int64

func testPrefix() string { return fmt.Sprintf("test%d:", prefixSeq.Add(1)) }

// newClient returns a client of srv, closed at the end of the test.
func newClient(t testing.TB, srv *server, hooks ...goredis.Hook) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.addr(), ContextTimeoutEnabled: true})
	for _, h := range hooks {
		c.AddHook(h)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a store on its own client of srv, closed at the end of
// the test.
func newStore(t testing.TB, srv *server, prefix string, hooks ...goredis.Hook) *Store {
	t.Helper()
	s := New(newClient(t, srv, hooks...), WithPrefix(prefix), WithTimeout(time.Second)) // generous: the machine is shared
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}
