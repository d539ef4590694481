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
// clock before writing); Redis 7 for the permission checks of Ping.
//
// # Round trips
//
// Breakers call their store only when something changes (see package
// store), so a closed success with no failures pending and an open
// rejection make no Redis call at all. A failure, a success that resets
// pending failures, a half-open trial claim or result, the end of an open
// period or trial lease, a rate flush, a reconciliation and a manual Open,
// Close or Isolate each make at most one: an EVALSHA of the store's Lua
// script (loaded once; go-redis reloads it on NOSCRIPT). Results (failures,
// resets, trial results, rate flushes) are sent off the caller's path by
// the breaker's pusher, which coalesces those that accumulate: n failures
// of one generation are one call ([Store.Failures]). Every transition
// is computed on the server by that script, atomically, with the rules of
// the pure functions of package store (a differential test drives both
// with random operation sequences); nothing is read, modified and written
// back by the client. A reply to an operation is the record after it.
// The benchmarks of this package report the Redis commands each call
// costs (cmds/op) beside its time: run
//
//	go test -run '^$' -bench . -benchmem ./runtime/store/redis
//
// for the figures of your machine and Redis.
//
// # Key layout
//
// Each circuit is one hash, at
//
//	<prefix>{<circuit>}:state
//
// with the default prefix "purgatory:". The braces are a Cluster hash tag,
// so a circuit's keys always sit in one slot. The store reads and writes
// only these fields (HMGET, never HGETALL: other fields are left alone and
// cost nothing), all decimal strings:
//
//	state       closed, open, half-open or isolated
//	gen, seq    generation (counts state changes), sequence (counts changes)
//	failures    consecutive failures while closed
//	claimed     trial calls in flight while half-open
//	succeeded   trial calls that succeeded while half-open; kept by the closed
//	            generation they started (a recovery), 0 in one closed by hand
//	until       open: end of the open period; half-open: end of the trial
//	            lease; Unix nanoseconds of the processes' clocks; else 0
//	level       backoff level
//	calls       \ a rate circuit's window totals after the last flush
//	failed      /
//	wgen, wstart, wcalls, wfailed   the rolling window (store.Window)
//	threshold, ttl, trials, maxttl, rate, window, min   the settings of the
//	            first registration (durations in nanoseconds)
//
// A record is created by the first registration or, if it was lost, by the
// first operation on it (every operation carries the caller's settings). A
// new record's seq is the Redis server time in microseconds, so that it is
// newer than anything a breaker saw of a lost one. A record can also go
// back in time (Redis restarted from an older snapshot, or failed over to a
// replica that missed writes): an operation from a generation later than
// the record's leaves it as it is, as the pure transitions say, but gives it
// such a newer seq and publishes it; and a watcher that reads a record older
// than what it handed out raises the record's seq past it (see Messages).
// A claimed trial slot is a lease: a restored or abandoned claim is freed
// when the lease ends.
//
// A record is corrupt when a field is unreadable or out of range: a
// threshold or trials above 1,000,000, a ttl, maxttl or window above 7 days
// (or a window under 1 ms with a rate), a rate outside [0, 1], more than
// 1e9 min calls, counters above 2^53, a gen or seq above 2^53 - 2^21 (the
// headroom one operation may add, so that the script never writes a number
// a Lua double cannot hold). A corrupt key (or one of another
// type) is replaced by a fresh record, the operation applies to that, and
// it returns a [*CorruptError] naming the key, with a valid snapshot. A
// record whose settings are in range but differ from the caller's is used
// as it is; the operation returns a [*ConflictError] with both settings
// and a valid snapshot, so that the breaker can report a configuration
// conflict. Settings out of those ranges are refused (an error) before
// Redis is asked.
//
// Records expire when idle: every write (and every registration) sets the
// key's expiry to a day, or ten times the circuit's longest period (ttl,
// maxttl, window) if that is longer, so an open circuit is never dropped
// early; an isolated circuit never expires (PERSIST). A circuit nobody
// touches for that long disappears and is recreated closed on next use.
//
// # Messages
//
// Every change is published, by the same script that makes it and before it
// writes, on the channel "<prefix>events" as one line of space-separated
// fields:
//
//	2 <state> <gen> <seq> <failures> <claimed> <succeeded> <until> <level> <calls> <failed> <circuit>
//
// (2 is the format version; the circuit name is the rest of the line, byte
// for byte: it may contain spaces and NUL bytes). A store subscribes once,
// on the first [Store.Watch]. Anybody with PUBLISH on the channel can send
// a message, so a message is a hint, not the record: the store hands one
// to its watchers as it is only when it moves on the counters of the
// generation the store knows by one step, and reads the record for
// anything else. What someone who may publish but not write the keys can
// and cannot do is set out in watch.go, beside the code that enforces it;
// in short, they cannot open, close, isolate or re-open a circuit, start
// a generation or lengthen an open period or lease, and operations are
// unaffected (their replies are the record). When the subscription is
// (re)established the store reads every watched record again. An idle
// subscription is pinged every 2 s, and one that stays silent is
// replaced. On a Cluster the subscription goes to one node; the Cluster
// forwards every published message to all nodes.
//
// # Permissions
//
// The store's user needs the keys and channel of its prefix and these
// commands (the scripts run with the caller's rights):
//
//	ACL SETUSER purgatory on >secret ~purgatory:* &purgatory:events +evalsha +eval +hmget +hset +del +pexpire +persist +time +publish +subscribe +ping +hello
//
// [Store.Ping] checks all of it at once (on Redis 7, without writing) and
// says what is missing; call it at start-up. A script that may not publish
// fails before it writes anything, so an operation is never half-applied.
// A subscription that fails (no SUBSCRIBE, a lost connection) is reported
// to the [WithErrorHandler] function, once per episode, and retried.
//
// # Faults
//
// Every call is bounded by the earlier of its context's deadline and the
// store timeout (50 ms unless set with [WithTimeout]). go-redis honours
// deadlines only with ContextTimeoutEnabled set in its options; without it
// (or with a client type the store cannot inspect) the store runs each call
// in a goroutine and stops waiting for it at the deadline. Errors say what
// failed: "cannot reach Redis" with go-redis's cause (connection refused),
// "Redis refused" with Redis's (NOAUTH, NOPERM), or "no answer in time"
// with the last failed connection attempt when there was one. A breaker
// whose store call fails carries on with its local state and reports the
// error to its listeners once per episode.
package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// DefaultPrefix is the key prefix of a store made without [WithPrefix].
const DefaultPrefix = "purgatory:"

// DefaultTimeout bounds every store call unless [WithTimeout] says otherwise.
const DefaultTimeout = 50 * time.Millisecond

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

// WithErrorHandler sets a function the store calls, from its own
// goroutines, when something fails that no store call returns: the
// subscription (a lost connection, or an ACL without SUBSCRIBE) and the
// reads that confirm published changes. It is called once per episode (a
// run of failures of one kind), with an error that says what failed. fn
// must not block.
func WithErrorHandler(fn func(error)) Option { return func(s *Store) { s.onError = fn } }

// Store is a [store.Store] kept in Redis. It is safe for concurrent use.
// Call [Store.Close] when done with it to stop its subscriber.
type Store struct {
	conn // the script calls of operations and reads (script.go)
	hub  // the subscription and the watched circuits (watch.go)
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.FailureBatcher = (*Store)(nil)
)

// New returns a store that keeps circuits in Redis through client. The
// client stays the caller's: Close does not close it. New adds a hook to
// the client that remembers the last failed connection attempt, so that a
// timeout can say why.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		conn: conn{client: client, prefix: DefaultPrefix, timeout: DefaultTimeout},
		hub: hub{
			health:  healthInterval,
			tracks:  make(map[string]*track),
			failing: make(map[string]bool),
			reads:   make(chan struct{}, maxReads),
		},
	}
	for _, o := range opts {
		o(s)
	}
	s.channel = s.prefix + "events"
	s.hub.conn = &s.conn
	s.ctx, s.cancel = context.WithCancel(context.Background())
	switch c := client.(type) {
	case *goredis.Client:
		s.ctxAware = c.Options().ContextTimeoutEnabled
	case *goredis.ClusterClient:
		s.ctxAware = c.Options().ContextTimeoutEnabled
	}
	client.AddHook(dialHook{&s.conn})
	return s
}

// Key returns the Redis key of the named circuit's hash.
func (s *Store) Key(circuit string) string { return s.key(circuit) }

// Channel returns the pub/sub channel the store publishes changes on.
func (s *Store) Channel() string { return s.channel }

// Close stops the subscriber and the watchers get nothing more. Store calls
// still work after Close; the client is not closed.
func (s *Store) Close() error {
	s.hub.close()
	return nil
}

// aclCommands are the commands a store's user must be allowed, besides
// the keys "~<prefix>*" and the channel "&<prefix>events" (see the package
// doc).
const aclCommands = "+evalsha +eval +hmget +hset +del +pexpire +persist +time +publish +subscribe +ping +hello"

// Register implements [store.Store]: the first registration across all
// processes sets the circuit's settings. It refreshes the record's idle
// expiry.
func (s *Store) Register(ctx context.Context, name string, set store.Settings) (store.Settings, store.Snapshot, error) {
	r, err := s.run(ctx, "register", store.Op{Circuit: name, Settings: set})
	return r.set, r.snap, err
}

// Failure implements [store.Store].
func (s *Store) Failure(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "failure", op)
	return r.snap, err
}

// Failures implements [store.FailureBatcher]: n failures in one script
// call.
func (s *Store) Failures(ctx context.Context, op store.Op, n int) (store.Snapshot, error) {
	if n < 1 || n > maxInt {
		return store.Snapshot{}, fmt.Errorf("purgatory/redis: failures %q: bad count %d", op.Circuit, n)
	}
	r, err := s.run(ctx, "failure", op, strconv.Itoa(n))
	return r.snap, err
}

// Success implements [store.Store].
func (s *Store) Success(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "success", op)
	return r.snap, err
}

// Claim implements [store.Store].
func (s *Store) Claim(ctx context.Context, op store.Op) (store.Snapshot, bool, error) {
	r, err := s.run(ctx, "claim", op, skewArg(op.Skew)...)
	return r.snap, r.granted, err
}

// Release implements [store.Store].
func (s *Store) Release(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "release", op)
	return r.snap, err
}

// Expire implements [store.Store].
func (s *Store) Expire(ctx context.Context, op store.Op) (store.Snapshot, error) {
	r, err := s.run(ctx, "expire", op, skewArg(op.Skew)...)
	return r.snap, err
}

// skewArg is the script's argument for a Claim's or Expire's clock skew
// (store.Op.Skew, taken in [0, store.MaxPeriod]): none when it is 0.
func skewArg(d time.Duration) []string {
	if d <= 0 {
		return nil
	}
	return []string{strconv.FormatInt(int64(min(d, store.MaxPeriod)), 10)}
}

// Force implements [store.Store].
func (s *Store) Force(ctx context.Context, op store.Op, to store.State) (store.Snapshot, error) {
	switch to {
	case store.Closed, store.Open, store.HalfOpen, store.Isolated:
	default:
		return store.Snapshot{}, fmt.Errorf("purgatory/redis: cannot force circuit %q to state %d", op.Circuit, to)
	}
	r, err := s.run(ctx, "force", op, to.String())
	return r.snap, err
}

// Record implements [store.Store]. Counts must not be negative (calls <= 0
// changes nothing), and op.Now must lie between 1970 and 2262.
func (s *Store) Record(ctx context.Context, op store.Op, calls, failed int) (store.Snapshot, error) {
	if failed < 0 || calls > maxInt || failed > maxInt {
		return store.Snapshot{}, fmt.Errorf("purgatory/redis: record %q: bad counts %d calls, %d failed", op.Circuit, calls, failed)
	}
	if ns := op.Now.UnixNano(); ns < 0 || !time.Unix(0, ns).Equal(op.Now) {
		return store.Snapshot{}, fmt.Errorf("purgatory/redis: record %q: time %v outside 1970-2262", op.Circuit, op.Now)
	}
	r, err := s.run(ctx, "record", op, strconv.Itoa(max(calls, 0)), strconv.Itoa(failed))
	return r.snap, err
}

// Reconcile implements [store.Store]. want.Level must not be negative.
func (s *Store) Reconcile(ctx context.Context, op store.Op, base uint64, want store.Snapshot) (store.Snapshot, error) {
	if want.Level < 0 || want.Level > maxInt {
		return store.Snapshot{}, fmt.Errorf("purgatory/redis: reconcile %q: bad level %d", op.Circuit, want.Level)
	}
	r, err := s.run(ctx, "reconcile", op, strconv.FormatUint(base, 10), want.State.String(),
		formatNanos(want.Until), strconv.Itoa(want.Level))
	return r.snap, err
}

// Ping checks that the store can work: Redis answers, the user may run the
// script and every command it runs on the store's keys and channel (with
// Redis 7 ACLs), and may subscribe to the channel. The error says what is
// missing. A store that fails Ping still keeps breakers working on local
// state, but shares nothing.
func (s *Store) Ping(ctx context.Context) error {
	key := s.Key("purgatory-ping")
	v, err := s.eval(ctx, key, []any{"ping", "", s.channel})
	if err != nil {
		return s.describe("ping", key, err)
	}
	if a, ok := v.([]any); ok && len(a) == 1 {
		if missing, _ := a[0].(string); missing != "" {
			return fmt.Errorf("purgatory/redis: ping: NOPERM this user may not run %s on %s* and channel %s; see the package doc for the ACL",
				missing, s.prefix, s.channel)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ps := s.client.Subscribe(ctx, s.channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("purgatory/redis: ping: cannot subscribe to %s: %w", s.channel, err)
	}
	return nil
}
