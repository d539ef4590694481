package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/purgatory-go/purgatory/runtime/store"
)

//go:embed script.lua
var scriptSource string

var script = goredis.NewScript(scriptSource)

// conn makes the store's script calls: one EVALSHA of script.lua per
// operation or read, bounded by the store timeout, with errors that say
// what failed.
type conn struct {
	client   goredis.UniversalClient
	prefix   string
	channel  string
	timeout  time.Duration
	ctxAware bool                      // the client honours context deadlines itself
	dialErr  atomic.Pointer[dialError] // the last failed connection attempt
}

// key returns the Redis key of the named circuit's hash.
func (c *conn) key(circuit string) string { return c.prefix + "{" + circuit + "}:state" }

// dialError is a failed connection attempt.
type dialError struct {
	err error
	at  time.Time
}

// lastDial returns the last failed connection attempt, if it was recent.
func (c *conn) lastDial() error {
	d := c.dialErr.Load()
	if d == nil || time.Since(d.at) > 10*c.timeout+time.Second {
		return nil
	}
	return d.err
}

// dialHook records failed connection attempts (see conn.lastDial).
type dialHook struct{ c *conn }

func (h dialHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.c.dialErr.Store(&dialError{err: err, at: time.Now()})
		} else {
			h.c.dialErr.Store(nil)
		}
		return c, err
	}
}

func (h dialHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h dialHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// result is a decoded script reply.
type result struct {
	status  string
	set     store.Settings
	snap    store.Snapshot
	granted bool
}

// run calls the script for one operation, within the store timeout. The
// snapshot of a *CorruptError or *ConflictError reply is valid.
func (c *conn) run(ctx context.Context, name string, op store.Op, extra ...string) (result, error) {
	key := c.key(op.Circuit)
	if err := checkSettings(op.Settings); err != nil {
		return result{}, fmt.Errorf("%w (circuit %q)", err, op.Circuit)
	}
	set := op.Settings
	args := make([]any, 0, 12+len(extra))
	args = append(args, name, op.Circuit, c.channel,
		strconv.Itoa(set.Threshold), strconv.FormatInt(int64(set.TTL), 10), strconv.Itoa(set.Trials),
		strconv.FormatInt(int64(set.MaxTTL), 10), strconv.FormatFloat(set.FailureRate, 'g', -1, 64),
		strconv.FormatInt(int64(set.Window), 10), strconv.Itoa(set.MinCalls),
		strconv.FormatUint(op.Gen, 10), formatNanos(op.Now))
	for _, e := range extra {
		args = append(args, e)
	}
	v, err := c.eval(ctx, key, args)
	if err != nil {
		return result{}, c.describe(name, key, err)
	}
	r, hasSet, err := decode(v)
	if err != nil {
		return result{}, fmt.Errorf("purgatory/redis: %s %s: bad script reply: %w", name, key, err)
	}
	if !hasSet {
		r.set = op.Settings // the script sends the record's only when they differ
	}
	switch {
	case r.status != "ok":
		return r, &CorruptError{Key: key, Reason: strings.TrimPrefix(r.status, "corrupt: ")}
	case name != "register" && r.set != op.Settings:
		return r, &ConflictError{Key: key, InForce: r.set, Wanted: op.Settings}
	}
	return r, nil
}

// read runs a read-only operation (get), or bump, on a circuit's record. ok
// is false when there is none (or it is unreadable).
func (c *conn) read(ctx context.Context, name, circuit string, extra ...any) (snap store.Snapshot, ok bool, err error) {
	key := c.key(circuit)
	args := append([]any{name, circuit, c.channel, "", "", "", "", "", "", "", "", ""}, extra...)
	v, err := c.eval(ctx, key, args)
	if err != nil {
		return store.Snapshot{}, false, c.describe(name, key, err)
	}
	r, _, err := decode(v)
	if err != nil {
		return store.Snapshot{}, false, fmt.Errorf("purgatory/redis: %s %s: bad script reply: %w", name, key, err)
	}
	return r.snap, r.status == "ok", nil
}

// get reads a circuit's record without changing it.
func (c *conn) get(ctx context.Context, circuit string) (store.Snapshot, bool, error) {
	return c.read(ctx, "get", circuit)
}

// describe wraps an error of a Redis call so that it says what failed.
func (c *conn) describe(name, key string, err error) error {
	var rerr goredis.Error
	switch {
	case errors.As(err, &rerr) && !isTimeout(err):
		return fmt.Errorf("purgatory/redis: %s %s: Redis refused: %w", name, key, err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		if d := c.lastDial(); d != nil {
			return fmt.Errorf("purgatory/redis: %s %s: no answer in time (%w); last connection attempt: %v", name, key, err, d)
		}
		return fmt.Errorf("purgatory/redis: %s %s: no answer in time: %w", name, key, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("purgatory/redis: %s %s: %w", name, key, err)
	}
	return fmt.Errorf("purgatory/redis: %s %s: cannot reach Redis: %w", name, key, err)
}

// eval runs the script within the store timeout, whether or not the client
// honours context deadlines.
func (c *conn) eval(ctx context.Context, key string, args []any) (any, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.ctxAware {
		return script.Run(ctx, c.client, []string{key}, args...).Result()
	}
	type reply struct {
		v   any
		err error
	}
	ch := make(chan reply, 1)
	go func() {
		v, err := script.Run(ctx, c.client, []string{key}, args...).Result()
		ch <- reply{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
