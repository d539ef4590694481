package sim

// The Redis mode (issue 17): the same histories, run twice on the
// simulated clock, once over store.Memory (as TestSimulation runs them) and
// once over the real Redis store (runtime/store/redis) against a
// redis-server started by the test; the two runs must tell the same story
// of the store, op by op, and end in the same states: a differential test
// of the two stores at fleet level.
//
// How the Redis run stays on the simulated clock: the Redis store's own
// Watch (a pub/sub goroutine in real time) is not used. Every store
// operation is a synchronous round trip to a loopback redis-server, and
// the script takes the caller's time (op.Now) as an argument, so the
// record's transitions depend on simulated time only. The deliveries are
// synthesized by redisStore below: after each operation, when the record
// it returned differs from the one the store last returned, it is handed
// to the circuit's watchers at once, as store.Memory does; the fault
// layer then sends it through the simulated network (with its delays,
// losses, duplicates, replays and forgeries, drawn from the same seed).
// So what is compared is the stores' transitions and the runtime on top
// of them, not the Redis store's subscription (its own tests, in
// runtime/store/redis, cover that).
//
// What is compared, and what is not:
//   - Seq is not compared: the Redis store numbers a new record from the
//     server's clock (microseconds), store.Memory from 1. Every other field
//     of every snapshot a store operation returned (state, generation,
//     failures, claimed, succeeded, until, level, window totals) is.
//   - Bursts (concurrent goroutines; their order is the Go scheduler's)
//     are left out of both runs.
//   - store.Memory drops a record when its last watcher stops (Remove,
//     Factory.Close): a record made again starts closed at generation 1.
//     The Redis store keeps a record until its idle expiry. redisStore
//     deletes the key when the last watcher of a circuit stops, as Memory
//     drops it, so that both runs see the same history.
//   - An operation on a record whose settings differ from the caller's
//     returns the snapshot with an Applied error from Redis
//     (ConflictError), with none from Memory; the runtime gets what each
//     store gives, as it would in production.

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/purgatory-go/purgatory/internal/redistest"
	"github.com/purgatory-go/purgatory/runtime/store"
	"github.com/purgatory-go/purgatory/runtime/store/redis"
)

// itemLaterGen is a difference the Redis mode found between the stores:
// an operation of a generation later than the record's (a process whose
// generations ran ahead while the store was away) makes the Redis store
// give the record a new Seq and announce it (script.lua, for a record
// that lost its history); store.Memory leaves the record as it is. The
// runtime acts on the new Seq: its next Reconcile matches it and pushes
// the process's local state into Redis, while over Memory the store's
// record wins and the process waits (seeds 249, 465, 884 of 1000). Which
// store is right is the lead's call: Memory could adopt the rule, or the
// Redis store keep it for lost records only.
const itemLaterGen = 105

// itemReconcileConflict is a defect the Redis mode found in the runtime:
// Breaker.reconcile (degraded.go) takes an Applied error from
// Store.Reconcile for a store failure. The Redis store answers every
// operation of a process whose settings differ from the record's (a
// rolling deploy) with its ConflictError, an Applied error: the record's
// settings applied, the snapshot valid. So such a process never retries
// a reconcile that lost to counters only (over Memory it does, and its
// operator's Open reaches the store), reports a store error and backs
// off (seed 1538: p1's operator Open of c2, registered by p1 with ttl 1s
// while the record has p2's 3s, reaches Memory at 14.259s, never Redis).
// openFor.go and link.go honour store.Applied; degraded.go does not.
const itemReconcileConflict = 106

func init() { // tolerated until decided (106 is fixed: Breaker.reconcile takes an Applied answer as an answer)
	knownItems[itemLaterGen] = true
}

var (
	flagRedisSeeds = flag.Int("sim.redis.seeds", 0, "how many seeds TestSimulationRedis runs against redis-server (default 30, none with -short; env PURGATORY_SIM_REDIS_SEEDS)")
	flagRedisSeed  = flag.Int64("sim.redis.seed", 0, "replay one seed of TestSimulationRedis, printing where the Memory and Redis runs part")
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.Stop()
	os.Exit(code)
}

// redisSeeds is how many seeds TestSimulationRedis runs.
func redisSeeds() int {
	if *flagRedisSeeds > 0 {
		return *flagRedisSeeds
	}
	if n, err := strconv.Atoi(os.Getenv("PURGATORY_SIM_REDIS_SEEDS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 0
	}
	return 30
}

// redisStore is the Redis store with deliveries synthesized on the
// simulated clock (see the top of this file).
type redisStore struct {
	r      *redis.Store
	client *goredis.Client
	mu     sync.Mutex
	last   map[string]store.Snapshot // the record as the store last returned it
	ws     map[string][]*redisWatcher
	broken error // the first error that was not a store answer
	// announce delivers a record the Redis store announced and Memory
	// would not (see done); announced counts them.
	announce  func(name string, snap store.Snapshot)
	announced int
	// traced is how many lines the run's story of the store had at the
	// first announcement (-1: none yet).
	traced func() int
	first  int
	// conflict is where the story was at the first Reconcile the Redis
	// store answered with an Applied error (finding 106); -1: none.
	conflict int
}

type redisWatcher struct{ fn func(store.Snapshot) }

var _ store.Store = (*redisStore)(nil)

func newRedisStore(client *goredis.Client, prefix string) *redisStore {
	return &redisStore{
		// A generous timeout: a slow answer of a loaded machine must not
		// look like a store fault (the fault layer injects those).
		r:      redis.New(client, redis.WithPrefix(prefix), redis.WithTimeout(30*time.Second)),
		client: client,
		last:   map[string]store.Snapshot{},
		ws:     map[string][]*redisWatcher{},
	}
}

// sameSnap compares every field of two snapshots.
func sameSnap(a, b store.Snapshot) bool {
	return a.State == b.State && a.Gen == b.Gen && a.Seq == b.Seq && a.Failures == b.Failures &&
		a.Claimed == b.Claimed && a.Succeeded == b.Succeeded && a.Until.Equal(b.Until) &&
		a.Level == b.Level && a.Calls == b.Calls && a.Failed == b.Failed
}

// semSnap writes every field of s but Seq (which the two stores number
// differently).
func semSnap(s store.Snapshot) string {
	until := "-"
	if !s.Until.IsZero() && s.Until.UnixNano() != 0 {
		until = s.Until.Sub(epoch).String()
	}
	return fmt.Sprintf("%s gen %d failures %d claimed %d succeeded %d until %s level %d window %d/%d",
		s.State, s.Gen, s.Failures, s.Claimed, s.Succeeded, until, s.Level, s.Failed, s.Calls)
}

// done notes the record an operation returned and hands it to the
// circuit's watchers when it changed.
//
// One change is the Redis store's own: an operation of a generation later
// than the record's (a caller that moved on by itself while the store was
// away) leaves the record as it is but gives it a new Seq and announces it,
// so that every breaker adopts it (script.lua: "the record is the truth
// now"). store.Memory does neither. That announcement is delivered to the
// watchers outside the fault layer (announce, 1 ms later, no faults), so
// that the two runs draw the same fault decisions from the seed, and it is
// not part of the compared story; what the processes do with it is.
func (rs *redisStore) done(o store.Op, snap store.Snapshot, err error) {
	name := o.Circuit
	rs.mu.Lock()
	if !answered(err) {
		if rs.broken == nil {
			rs.broken = err
		}
		rs.mu.Unlock()
		return
	}
	prev, ok := rs.last[name]
	rs.last[name] = snap
	ws := rs.ws[name]
	rs.mu.Unlock()
	if ok && sameSnap(prev, snap) {
		return
	}
	if ok && o.Gen > prev.Gen && semSnap(prev) == semSnap(snap) && rs.announce != nil {
		if rs.announced == 0 && rs.traced != nil {
			rs.first = rs.traced()
		}
		rs.announced++
		rs.announce(name, snap)
		return
	}
	for _, w := range ws {
		w.fn(snap)
	}
}

// bg: the fault layer decides about contexts (a hang costs simulated
// time); the round trip itself is not cancelled.
var bg = context.Background()

func (rs *redisStore) Register(_ context.Context, name string, s store.Settings) (store.Settings, store.Snapshot, error) {
	set, snap, err := rs.r.Register(bg, name, s)
	rs.mu.Lock()
	if answered(err) {
		rs.last[name] = snap // a registration changes nothing Memory would announce
	} else if rs.broken == nil {
		rs.broken = err
	}
	rs.mu.Unlock()
	return set, snap, err
}

func (rs *redisStore) Failure(_ context.Context, o store.Op) (store.Snapshot, error) {
	snap, err := rs.r.Failure(bg, o)
	rs.done(o, snap, err)
	return snap, err
}

func (rs *redisStore) Success(_ context.Context, o store.Op) (store.Snapshot, error) {
	snap, err := rs.r.Success(bg, o)
	rs.done(o, snap, err)
	return snap, err
}

func (rs *redisStore) Claim(_ context.Context, o store.Op) (store.Snapshot, bool, error) {
	snap, granted, err := rs.r.Claim(bg, o)
	rs.done(o, snap, err)
	return snap, granted, err
}

func (rs *redisStore) Release(_ context.Context, o store.Op) (store.Snapshot, error) {
	snap, err := rs.r.Release(bg, o)
	rs.done(o, snap, err)
	return snap, err
}

func (rs *redisStore) Expire(_ context.Context, o store.Op) (store.Snapshot, error) {
	snap, err := rs.r.Expire(bg, o)
	rs.done(o, snap, err)
	return snap, err
}

func (rs *redisStore) Force(_ context.Context, o store.Op, to store.State) (store.Snapshot, error) {
	snap, err := rs.r.Force(bg, o, to)
	rs.done(o, snap, err)
	return snap, err
}

func (rs *redisStore) Record(_ context.Context, o store.Op, calls, failed int) (store.Snapshot, error) {
	snap, err := rs.r.Record(bg, o, calls, failed)
	rs.done(o, snap, err)
	return snap, err
}

func (rs *redisStore) Reconcile(_ context.Context, o store.Op, base uint64, want store.Snapshot) (store.Snapshot, error) {
	snap, err := rs.r.Reconcile(bg, o, base, want)
	if err != nil && answered(err) && rs.traced != nil {
		rs.mu.Lock()
		first := rs.conflict < 0
		rs.mu.Unlock()
		if first {
			n := rs.traced()
			rs.mu.Lock()
			rs.conflict = n
			rs.mu.Unlock()
		}
	}
	rs.done(o, snap, err)
	return snap, err
}

// Watch registers fn for the synthesized deliveries. When the last
// watcher of a circuit stops, the record is deleted, as store.Memory drops
// it (see the top of this file).
func (rs *redisStore) Watch(name string, fn func(store.Snapshot)) func() {
	w := &redisWatcher{fn: fn}
	rs.mu.Lock()
	rs.ws[name] = append(slices.Clip(rs.ws[name]), w)
	rs.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			rs.mu.Lock()
			rs.ws[name] = slices.DeleteFunc(slices.Clone(rs.ws[name]), func(x *redisWatcher) bool { return x == w })
			last := len(rs.ws[name]) == 0
			if last {
				delete(rs.ws, name)
				delete(rs.last, name)
			}
			rs.mu.Unlock()
			if last {
				// (After the history, a stop run by a cleanup may find the
				// client closed: nothing is left to compare then.)
				_ = rs.client.Del(bg, rs.r.Key(name)).Err()
			}
		})
	}
}

// diffRun is what one run of a history tells for the comparison.
type diffRun struct {
	mu     sync.Mutex
	trace  []string // every store operation let through, every message published
	views  []string // per checkpoint: what each live process sees of each circuit
	final  []string // the store's records after the healthy phase
	viol   []violation
	story  []string
	broken error
	// announcedAt is where in trace the Redis store first made an
	// announcement Memory does not (finding 105); -1: never.
	announcedAt int
	// conflictAt is where in trace a Reconcile first got an Applied error
	// from the Redis store (finding 106); -1: never.
	conflictAt int
}

var baseSeq = regexp.MustCompile(`base seq \d+`)

// runDiff runs h over st (nil: a store.Memory, as TestSimulation does).
func runDiff(h *history, st *redisStore, tell bool) *diffRun {
	keep := make([]bool, len(h.actions))
	for i := range keep {
		keep[i] = true
	}
	w := newWorld(h, keep, false)
	w.tell = tell
	d := &diffRun{announcedAt: -1, conflictAt: -1}
	if st != nil {
		w.mem = st
		st.first, st.conflict = -1, -1
		st.traced = func() int {
			d.mu.Lock()
			defer d.mu.Unlock()
			return len(d.trace)
		}
		st.announce = func(name string, snap store.Snapshot) {
			w.mu.Lock()
			ws := slices.Clone(w.watchers)
			w.mu.Unlock()
			for _, x := range ws {
				if x.name == name && !x.p.dead {
					w.s.add(w.s.Now()+time.Millisecond, "watch", x.p, func() {
						x.deliver(snap, "the Redis store's announcement (an operation of a later generation than the record's):")
					})
				}
			}
		}
	}
	w.onStore = func(line string) {
		d.mu.Lock()
		line = baseSeq.ReplaceAllString(line, "base seq _") // (Seq is not compared)
		d.trace = append(d.trace, fmt.Sprintf("%9s  %s", fmtDur(w.s.Now()), line))
		d.mu.Unlock()
	}
	w.checkpoint = func(phase int) {
		switch phase {
		case 0, 2: // the end of the faults; the end of the healthy phase
		default:
			return
		}
		what := map[int]string{0: "when faults heal", 2: "after the healthy phase"}[phase]
		for _, cs := range h.circuits {
			for _, p := range w.procs {
				if p.dead || p.closed {
					continue
				}
				if b, ok := p.f.Lookup(cs.name); ok {
					d.views = append(d.views, fmt.Sprintf("%s: %s sees %s %s", what, p.name, cs.name, b.State()))
				}
			}
			if phase == 2 {
				// The healthy phase read every record already (peek
				// registers): reading again changes nothing.
				d.final = append(d.final, fmt.Sprintf("%s: store holds %s", cs.name, semSnap(w.peek(cs))))
			}
		}
	}
	d.viol = w.run()
	d.story = w.story
	if st != nil {
		st.mu.Lock()
		d.broken = st.broken
		d.announcedAt, d.conflictAt = st.first, st.conflict
		if st.announced == 0 {
			d.announcedAt = -1
		}
		st.mu.Unlock()
	}
	return d
}

// differ compares the two runs of seed and says how they differ ("" when
// they agree), and the finding that explains it (0: none known).
func differ(mem, red *diffRun) (string, int) {
	if red.broken != nil {
		return fmt.Sprintf("the Redis store failed (not a store answer): %v", red.broken), 0
	}
	var b strings.Builder
	item := 0
	if i := firstDiff(mem.trace, red.trace); i >= 0 {
		// The finding whose signature came last before the stories part.
		if red.announcedAt >= 0 && red.announcedAt <= i {
			item = itemLaterGen
		}
		if red.conflictAt >= 0 && red.conflictAt <= i && red.conflictAt >= red.announcedAt {
			item = itemReconcileConflict
		}
		switch item {
		case itemLaterGen:
			fmt.Fprintf(&b, "(after the Redis store announced, at line %d, a record behind an operation's generation, which Memory does not: finding %d)\n", red.announcedAt+1, itemLaterGen)
		case itemReconcileConflict:
			fmt.Fprintf(&b, "(after a Reconcile got the Redis store's settings conflict, an Applied error, at line %d, which the runtime takes for a store failure: finding %d)\n", red.conflictAt+1, itemReconcileConflict)
		}
		fmt.Fprintf(&b, "the store's story parts at line %d of %d (Memory) / %d (Redis):\n", i+1, len(mem.trace), len(red.trace))
		from := max(i-6, 0)
		fmt.Fprintf(&b, "  Memory:\n%s\n  Redis:\n%s\n", excerpt(mem.trace, from, i+3), excerpt(red.trace, from, i+3))
	}
	if i := firstDiff(mem.views, red.views); i >= 0 {
		fmt.Fprintf(&b, "the processes' views differ:\n  Memory: %s\n  Redis:  %s\n", at(mem.views, i), at(red.views, i))
	}
	if i := firstDiff(mem.final, red.final); i >= 0 {
		fmt.Fprintf(&b, "the final records differ:\n  Memory: %s\n  Redis:  %s\n", at(mem.final, i), at(red.final, i))
	}
	if mv, rv := violKinds(mem.viol), violKinds(red.viol); mv != rv {
		fmt.Fprintf(&b, "the invariants' verdicts differ:\n  Memory: %s\n  Redis:  %s\n", mv, rv)
	}
	if b.Len() == 0 {
		return "", 0
	}
	if item == 0 && red.conflictAt >= 0 {
		item = itemReconcileConflict // the stories agree; the states part after a conflict
	}
	if item == 0 && red.announcedAt >= 0 {
		item = itemLaterGen // the stories agree; the states part after an announcement
	}
	return b.String(), item
}

func firstDiff(a, b []string) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return "(nothing)"
}

func excerpt(l []string, from, to int) string {
	var out []string
	for i := from; i < min(to, len(l)); i++ {
		out = append(out, fmt.Sprintf("    %4d %s", i+1, l[i]))
	}
	return strings.Join(out, "\n")
}

func violKinds(vs []violation) string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s/%d", v.kind, v.item))
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// redisHistory is the history of seed as the Redis mode runs it: without
// bursts (see the top of this file).
func redisHistory(seed int64) *history {
	h := newHistory(seed)
	h.burst = false
	return h
}

// compareSeed runs seed over both stores and returns the difference.
func compareSeed(seed int64, client *goredis.Client, prefix string, tell bool) (string, int, *diffRun, *diffRun) {
	mem := runDiff(redisHistory(seed), nil, tell)
	// A client per seed: redis.New adds a hook to the client it is given,
	// and a client shared by every seed's store would pile them up.
	opt := *client.Options()
	c := goredis.NewClient(&opt)
	defer c.Close()
	rs := newRedisStore(c, fmt.Sprintf("%ss%d:", prefix, seed))
	red := runDiff(redisHistory(seed), rs, tell)
	_ = rs.r.Close()
	diff, item := differ(mem, red)
	return diff, item, mem, red
}

func redisReplay(seed int64) string {
	return fmt.Sprintf("go test ./runtime/internal/sim -run 'TestSimulationRedis$' -sim.redis.seed=%d -v", seed)
}

// TestSimulationRedis is the Redis mode: each seed's history over
// store.Memory and over the Redis store must tell the same story.
func TestSimulationRedis(t *testing.T) {
	t.Parallel() // the longest tests of the package run side by side
	if *flagRedisSeed != 0 {
		client, prefix := redistest.Client(t)
		seed := *flagRedisSeed
		diff, item, mem, red := compareSeed(seed, client, prefix, true)
		t.Logf("seed %d:\n%s", seed, describeHistory(redisHistory(seed)))
		t.Logf("store story, Memory run:\n%s", strings.Join(mem.trace, "\n"))
		t.Logf("store story, Redis run:\n%s", strings.Join(red.trace, "\n"))
		t.Logf("Memory run, full story:\n%s", strings.Join(mem.story, "\n"))
		t.Logf("Redis run, full story:\n%s", strings.Join(red.story, "\n"))
		switch {
		case diff == "":
		case tolerated(item) && !strict():
			t.Logf("seed %d: Memory and Redis part (finding %d, tolerated until decided):\n%s", seed, item, diff)
		default:
			t.Fatalf("seed %d: Memory and Redis part:\n%s", seed, diff)
		}
		return
	}
	n, first := redisSeeds(), *flagFirst
	if n == 0 {
		t.Skip("the Redis mode runs no seeds with -short (-sim.redis.seeds=N runs N)")
	}
	start := time.Now()
	var (
		mu     sync.Mutex
		failed = map[int64]string{}
		known  = map[int64]int{}
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	next.Store(first)
	for range goruntime.GOMAXPROCS(0) {
		client, prefix := redistest.Client(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1) - 1
				if seed >= first+int64(n) {
					return
				}
				diff, item, _, _ := compareSeed(seed, client, prefix, false)
				mu.Lock()
				switch {
				case diff == "":
				case tolerated(item) && !strict():
					known[seed] = item
				default:
					failed[seed] = diff
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, seed := range slices.Sorted(maps.Keys(failed)) {
		t.Errorf("simulation (redis): seed %d: Memory and Redis part:\n%s\nreplay: %s", seed, failed[seed], redisReplay(seed))
	}
	if len(known) > 0 {
		t.Logf("simulation (redis): %d seeds part where a known finding explains it (105: the Redis store's later-generation announcement), tolerated until decided: %v",
			len(known), known)
	}
	t.Logf("simulation (redis): %d of %d seeds (%d..%d) agree between Memory and Redis, in %s",
		n-len(failed)-len(known), n, first, first+int64(n)-1, time.Since(start).Round(time.Millisecond))
}

// TestFinding105LaterGenerationRedisVsMemory is finding 105 (see
// itemLaterGen): seed 884, over Memory and over Redis, parts after p2's
// Reconcile of generation 4 meets the record's generation 3.
func TestFinding105LaterGenerationRedisVsMemory(t *testing.T) {
	skipUntilMerged(t, "finding 105: Memory and the Redis store disagree on an operation of a later generation than the record's; no fix yet, the lead decides")
	client, prefix := redistest.Client(t)
	for _, seed := range []int64{884, 249, 465} {
		if diff, _, _, _ := compareSeed(seed, client, prefix, false); diff != "" {
			t.Errorf("seed %d: Memory and Redis part:\n%s\nreplay: %s", seed, diff, redisReplay(seed))
		}
	}
}

// TestFinding106ReconcileConflictRedisVsMemory is finding 106 (see
// itemReconcileConflict): seed 1538 parts when p1's Reconcile meets the
// Redis store's settings conflict.
func TestFinding106ReconcileConflictRedisVsMemory(t *testing.T) {
	client, prefix := redistest.Client(t)
	if diff, _, _, _ := compareSeed(1538, client, prefix, false); diff != "" {
		t.Errorf("seed 1538: Memory and Redis part:\n%s\nreplay: %s", diff, redisReplay(1538))
	}
}
