package redis

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// proxy forwards TCP connections to a Redis server and can make the ones
// it has silently drop everything (a dead peer that never closes: no EOF,
// no error), while new connections work.
type proxy struct {
	l       net.Listener
	target  string
	mu      sync.Mutex
	conns   []*proxied
	blocked atomic.Bool // every connection, old and new, drops its traffic
}

type proxied struct {
	p             *proxy
	frozen        atomic.Bool
	client, redis net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{l: l, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		r, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		pc := &proxied{p: p, client: c, redis: r}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		go pc.pipe(c, r)
		go pc.pipe(r, c)
	}
}

func (pc *proxied) pipe(src, dst net.Conn) {
	defer pc.client.Close()
	defer pc.redis.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if pc.frozen.Load() || pc.p.blocked.Load() {
			continue // into the void
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// freeze makes every connection made so far drop all its traffic.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.frozen.Store(true)
	}
}

func (p *proxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		_ = pc.client.Close()
		_ = pc.redis.Close()
	}
}

// TestSilentConnection: the subscriber's connection goes dead without an
// error (a network partition, a dead peer); the store notices by its health
// ping, subscribes again on a new connection and resynchronises, so its
// watchers learn of the change they missed.
func TestSilentConnection(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	direct := newStore(t, srv, prefix)
	p := newProxy(t, srv.addr())
	c := goredis.NewClient(&goredis.Options{Addr: p.addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	far := New(c, WithPrefix(prefix), WithTimeout(200*time.Millisecond))
	far.health = 100 * time.Millisecond
	t.Cleanup(func() { _ = far.Close() })

	_, snap, err := direct.Register(ctx, "c", testSettings)
	require.NoError(t, err)
	var last atomic.Pointer[store.Snapshot]
	stop := far.Watch("c", func(s store.Snapshot) {
		if cur := last.Load(); cur == nil || s.Seq > cur.Seq {
			last.Store(&s)
		}
	})
	defer stop()
	require.Eventually(t, func() bool { s := last.Load(); return s != nil && s.Seq == snap.Seq },
		10*time.Second, 5*time.Millisecond, "the watch starts with the record")
	waitSubscribed(t, srv, prefix, 1)

	p.freeze()
	opened, err := direct.Force(ctx, store.Op{Circuit: "c", Settings: testSettings, Gen: snap.Gen, Now: time.Unix(9, 0)}, store.Open)
	require.NoError(t, err)
	require.Eventually(t, func() bool { s := last.Load(); return s.Seq == opened.Seq },
		10*time.Second, 5*time.Millisecond, "the change never reached the watcher behind the dead connection")
	assert.Equal(t, opened, *last.Load())
}
