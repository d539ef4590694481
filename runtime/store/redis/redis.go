// Package redis is a circuit store kept in Redis, so that every process
// using the same Redis (and prefix) shares one state per circuit: failures
// from all processes add up, and a trip in one process rejects calls in all
// of them.
//
//	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
//	st := redis.New(client)
//	defer st.Close()
//	f := purgatory.NewFactory(purgatory.WithStore(st))
//
// It works with any go-redis v9 [goredis.UniversalClient]: a single node,
// Sentinel or Cluster (its tests run the conformance suite on a three-node
// Cluster too). It needs Redis 5 or later (scripts that read the server
// clock before writing).
//
// # Round trips
//
// Breakers call their store only when something changes (see package
// store), so a closed success with no failures pending and an open
// rejection make no Redis call at all. A failure, a success that resets
// pending failures, a half-open trial claim or result, the end of an open
// period and a manual Open or Close each make exactly one: an EVALSHA of
// the store's Lua script (loaded once; go-redis reloads it on NOSCRIPT).
// Every transition is computed on the server by that script, atomically, with
// the same rules as the pure functions of package store; nothing is
// read, modified and written back by the client. Creating a breaker costs a
// Register call and, in the background, a read of its record for its
// watcher (and one subscription per store).
//
// # Key layout
//
// Each circuit is one hash, at
//
//	<prefix>{<circuit>}:state
//
// with the default prefix "purgatory:". The braces are a Cluster hash tag,
// so a circuit's keys always sit in one slot. Its fields, all decimal
// strings:
//
//	state       closed, open or half-open
//	gen         generation: counts state changes
//	seq         counts every change of the record
//	failures    consecutive failures while closed
//	claimed     trial calls in flight while half-open
//	succeeded   trial calls that succeeded while half-open
//	open_until  while open: when it may become half-open, in Unix nanoseconds
//	            (of the clocks of the processes, which should agree); else 0
//	threshold   \
//	ttl         | the settings of the first registration (ttl in nanoseconds)
//	trials      /
//
// A record is created by the first registration or, if it was lost, by the
// first operation on it (every operation carries the caller's settings). A
// new record's seq is the Redis server time in microseconds, so that it is
// newer than anything a breaker saw of a lost one. A record can also go
// back in time (Redis restarted from an older snapshot, or failed over to a
// replica that missed writes): an operation from a generation later than
// the record's leaves it as it is, as the pure transitions say, but gives it
// such a newer seq and publishes it, so that every breaker adopts it rather
// than wait for a generation that will not come. A key that holds
// something else (another type, an unreadable field) is treated as absent:
// the operation replaces it with a fresh record and applies to that, and
// returns a [*CorruptError] naming the key, which the breaker reports to its
// listeners; nothing panics. Records do not expire; delete the keys of
// circuits you retired.
//
// # Messages
//
// Every change is published, by the same script that makes it, on the
// channel "<prefix>events" as one line of space-separated fields:
//
//	1 <state> <gen> <seq> <failures> <claimed> <succeeded> <open_until> <circuit>
//
// (1 is the format version; the circuit name is the rest of the line and may
// contain spaces). A store subscribes once, on the first [Store.Watch], and
// hands each message to the watchers of its circuit; messages it cannot
// parse are ignored. An idle subscription is pinged every 2 s, and one that
// stays silent (a dead peer that never closed the connection) is replaced.
// When the subscription is (re)established, after a
// reconnection for instance, the store reads the record of every watched
// circuit again and hands it to the watchers, so that nothing missed while
// Redis was away lingers. Breakers also end an open period by their own
// clock, so a lost message cannot keep a circuit open. On a Cluster the
// subscription goes to one node; the Cluster forwards every published
// message to all nodes.
//
// # Faults
//
// Every call is bounded by the earlier of its context's deadline and the
// store timeout (50 ms unless set with [WithTimeout]). go-redis honours
// deadlines only with ContextTimeoutEnabled set in its options; without it
// (or with a client type the store cannot inspect) the store runs each call
// in a goroutine and stops waiting for it at the deadline. A breaker whose
// store call fails carries on with its local state and reports the error to
// its listeners once per episode.
package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// DefaultPrefix is the key prefix of a store made without [WithPrefix].
const DefaultPrefix = "purgatory:"

// DefaultTimeout bounds every store call unless [WithTimeout] says otherwise.
const DefaultTimeout = 50 * time.Millisecond

//go:embed script.lua
var scriptSource string

var script = goredis.NewScript(scriptSource)

// Option configures a [Store].
type Option func(*Store)

// WithPrefix sets the prefix of every key and of the pub/sub channel
// (default "purgatory:"). Processes share circuits only when they use the
// same prefix.
func WithPrefix(prefix string) Option { return func(s *Store) { s.prefix = prefix } }

// WithTimeout bounds every call to Redis (default 50 ms); a call also ends
// at its context's deadline if that comes first. It panics if d <= 0.
func WithTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("purgatory/redis: timeout must be positive, got %s", d))
	}
	return func(s *Store) { s.timeout = d }
}

// Store is a [store.Store] kept in Redis. It is safe for concurrent use.
// Call [Store.Close] when done with it to stop its subscriber.
type Store struct {
	client   goredis.UniversalClient
	prefix   string
	channel  string
	timeout  time.Duration
	health   time.Duration // see healthInterval
	ctxAware bool          // the client honours context deadlines itself

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	watchers map[string]map[*watcher]struct{}
	started  bool
	closed   bool
	ps       *goredis.PubSub
	pending  map[string]struct{} // circuits to read again for their watchers
	kick     chan struct{}       // wakes the resync worker
}

type watcher struct{ fn func(store.Snapshot) }

var _ store.Store = (*Store)(nil)

// New returns a store that keeps circuits in Redis through client. The
// client stays the caller's: Close does not close it.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		client:   client,
		prefix:   DefaultPrefix,
		timeout:  DefaultTimeout,
		health:   healthInterval,
		watchers: make(map[string]map[*watcher]struct{}),
		pending:  make(map[string]struct{}),
		kick:     make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	s.channel = s.prefix + "events"
	s.ctx, s.cancel = context.WithCancel(context.Background())
	switch c := client.(type) {
	case *goredis.Client:
		s.ctxAware = c.Options().ContextTimeoutEnabled
	case *goredis.ClusterClient:
		s.ctxAware = c.Options().ContextTimeoutEnabled
	}
	return s
}

// Key returns the Redis key of the named circuit's hash.
func (s *Store) Key(circuit string) string { return s.prefix + "{" + circuit + "}:state" }

// Channel returns the pub/sub channel the store publishes changes on.
func (s *Store) Channel() string { return s.channel }

// Close stops the subscriber and the watchers get nothing more. Store calls
// still work after Close; the client is not closed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	ps := s.ps
	s.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
	s.wg.Wait()
	return nil
}

// CorruptError reports a key that did not hold a readable circuit record.
// The store has replaced it with a fresh record.
type CorruptError struct {
	Key    string // the Redis key
	Reason string // what was wrong with it
}

// Error names the key and says what was wrong with it.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("purgatory/redis: corrupt circuit record at %q (%s); replaced by a fresh one", e.Key, e.Reason)
}

// Register implements [store.Store]: the first registration across all
// processes sets the circuit's settings.
func (s *Store) Register(ctx context.Context, name string, set store.Settings) (store.Settings, store.Snapshot, error) {
	r, err := s.run(ctx, "register", store.Op{Circuit: name, Settings: set}, "")
	return r.set, r.snap, err
}

// Failure implements [store.Store].
func (s *Store) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "failure", op, "")
	return r.snap, err
}

// Success implements [store.Store].
func (s *Store) Success(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "success", op, "")
	return r.snap, err
}

// Claim implements [store.Store].
func (s *Store) Claim(ctx context.Context, op store.Op) (store.Snapshot, bool, error) {
	r, err := s.run(ctx, "claim", op, "")
	return r.snap, r.granted && err == nil, err
}

// Release implements [store.Store].
func (s *Store) Release(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "release", op, "")
	return r.snap, err
}

// Expire implements [store.Store].
func (s *Store) Expire(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "expire", op, "")
	return r.snap, err
}

// Force implements [store.Store].
func (s *Store) Force(ctx context.Context, op store.Op, to store.State) (store.Snapshot, error) {
	switch to {
	case store.Closed, store.Open, store.HalfOpen:
	default:
		return store.Snapshot{}, fmt.Errorf("purgatory/redis: cannot force circuit %q to state %d", op.Circuit, to)
	}
	r, err := s.run(ctx, "force", op, to.String())
	return r.snap, err
}

// result is a decoded script reply.
type result struct {
	status  string
	set     store.Settings
	snap    store.Snapshot
	granted bool
}

// run calls the script for one operation, within the store timeout.
func (s *Store) run(ctx context.Context, name string, op store.Op, to string) (result, error) {
	key := s.Key(op.Circuit)
	args := []any{
		name, op.Circuit, s.channel,
		strconv.Itoa(op.Settings.Threshold), strconv.FormatInt(int64(op.Settings.TTL), 10),
		strconv.Itoa(op.Settings.Trials), strconv.FormatUint(op.Gen, 10), formatNanos(op.Now), to,
	}
	v, err := s.eval(ctx, key, args)
	if err != nil {
		return result{}, fmt.Errorf("purgatory/redis: %s %s: %w", name, key, err)
	}
	r, err := decode(v)
	if err != nil {
		return result{}, fmt.Errorf("purgatory/redis: %s %s: bad script reply: %w", name, key, err)
	}
	if r.status != "ok" {
		return r, &CorruptError{Key: key, Reason: strings.TrimPrefix(r.status, "corrupt: ")}
	}
	return r, nil
}

// get reads a circuit's record without changing it. ok is false when there
// is none (or it is unreadable).
func (s *Store) get(ctx context.Context, circuit string) (snap store.Snapshot, ok bool, err error) {
	v, err := s.eval(ctx, s.Key(circuit), []any{"get", circuit, s.channel, "", "", "", "", "", ""})
	if err != nil {
		return store.Snapshot{}, false, err
	}
	r, err := decode(v)
	if err != nil {
		return store.Snapshot{}, false, err
	}
	return r.snap, r.status == "ok", nil
}

// eval runs the script within the store timeout, whether or not the client
// honours context deadlines.
func (s *Store) eval(ctx context.Context, key string, args []any) (any, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.ctxAware {
		return script.Run(ctx, s.client, []string{key}, args...).Result()
	}
	type reply struct {
		v   any
		err error
	}
	ch := make(chan reply, 1)
	go func() {
		v, err := script.Run(ctx, s.client, []string{key}, args...).Result()
		ch <- reply{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var errShort = errors.New("short reply")

// decode parses a script reply (see script.lua).
func decode(v any) (result, error) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return result{}, errShort
	}
	f := make([]string, len(a))
	for i, x := range a {
		if f[i], ok = x.(string); !ok {
			return result{}, fmt.Errorf("field %d is %T, not a string", i, x)
		}
	}
	r := result{status: f[0]}
	if len(f) == 1 {
		return r, nil // get of an absent or corrupt record
	}
	if len(f) != 12 {
		return result{}, errShort
	}
	snap, err := parseSnapshot(f[1:8])
	if err != nil {
		return result{}, err
	}
	r.snap = snap
	ints := make([]int64, 3)
	for i, x := range []string{f[8], f[9], f[10]} {
		if ints[i], err = strconv.ParseInt(x, 10, 64); err != nil {
			return result{}, err
		}
	}
	r.set = store.Settings{Threshold: int(ints[0]), TTL: time.Duration(ints[1]), Trials: int(ints[2])}
	r.granted = f[11] == "1"
	return r, nil
}

// parseSnapshot parses state, gen, seq, failures, claimed, succeeded,
// open_until.
func parseSnapshot(f []string) (store.Snapshot, error) {
	var s store.Snapshot
	switch f[0] {
	case "closed":
		s.State = store.Closed
	case "open":
		s.State = store.Open
	case "half-open":
		s.State = store.HalfOpen
	default:
		return s, fmt.Errorf("bad state %q", f[0])
	}
	var n [5]uint64
	for i := range n {
		var err error
		if n[i], err = strconv.ParseUint(f[i+1], 10, 63); err != nil {
			return s, err
		}
	}
	s.Gen, s.Seq = n[0], n[1]
	s.Failures, s.Claimed, s.Succeeded = int(n[2]), int(n[3]), int(n[4])
	if s.State == store.Open {
		t, err := parseNanos(f[6])
		if err != nil {
			return s, err
		}
		s.OpenUntil = t
	}
	return s, nil
}

// formatNanos formats t as decimal Unix nanoseconds, for any t (also those
// that do not fit an int64 of nanoseconds, such as the zero time).
func formatNanos(t time.Time) string {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	if sec >= 0 {
		if sec == 0 {
			return strconv.FormatInt(nsec, 10)
		}
		return fmt.Sprintf("%d%09d", sec, nsec)
	}
	if nsec == 0 {
		return fmt.Sprintf("-%d000000000", -sec)
	}
	sec, nsec = -sec-1, 1e9-nsec
	if sec == 0 {
		return fmt.Sprintf("-%d", nsec)
	}
	return fmt.Sprintf("-%d%09d", sec, nsec)
}

// parseNanos is the inverse of formatNanos.
func parseNanos(v string) (time.Time, error) {
	digits, neg := strings.CutPrefix(v, "-")
	if digits == "" || len(digits) > 21 || strings.TrimLeft(digits, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("bad time %q", v)
	}
	var sec, nsec int64
	if n := len(digits); n > 9 {
		sec, _ = strconv.ParseInt(digits[:n-9], 10, 64)
		nsec, _ = strconv.ParseInt(digits[n-9:], 10, 64)
	} else {
		nsec, _ = strconv.ParseInt(digits, 10, 64)
	}
	if neg {
		if nsec > 0 {
			sec, nsec = -sec-1, 1e9-nsec
		} else {
			sec = -sec
		}
	}
	return time.Unix(sec, nsec), nil
}
