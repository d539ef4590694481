package runtime

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a [Group].
const (
	// DefaultMaxKeys bounds the circuits a group holds at once. A thousand
	// keeps every host a service usually talks to (or every tenant of a
	// small service) in a circuit of its own while bounding memory to a
	// thousand circuits' worth even if all of them are open (what one
	// costs: BenchmarkIdleOpenCircuits, see [Factory.Remove]),
	// and the exporters' per-key series, when asked for, to a number a
	// Prometheus server takes in its stride.
	DefaultMaxKeys = 1000
	// DefaultIdleTimeout is how long a circuit of a group may go without
	// calls before it is evicted (see [Group] for the circuits that stay
	// longer). Ten minutes keeps the circuit of a key called every few
	// minutes (a cron, a batch), and its pending failures, while a
	// crawler's or a fan-out's one-off keys, and the circuits of hosts
	// that went away, go.
	DefaultIdleTimeout = 10 * time.Minute
	// MaxKeyLen is the longest key a circuit name holds verbatim (every
	// DNS host name fits); longer keys are hashed (see [Group.Breaker]).
	MaxKeyLen = 256
)

// GroupOption configures a [Group].
type GroupOption func(*groupConfig)

type groupConfig struct {
	maxKeys int
	idle    time.Duration
}

// WithMaxKeys bounds how many circuits a group holds at once (default
// [DefaultMaxKeys]); see [Group.Breaker] for what happens past it. It
// panics if n < 1.
func WithMaxKeys(n int) GroupOption {
	mustPositive("max keys", int64(n))
	return func(c *groupConfig) { c.maxKeys = n }
}

// WithIdleTimeout sets how long a circuit of the group may go without
// calls before it is evicted (default [DefaultIdleTimeout]). An evicted
// circuit is gone between d and 1.5×d after its last call, or, if it was
// not at rest then (see [Group]), within d/2 after it came to rest. It
// panics if d <= 0.
func WithIdleTimeout(d time.Duration) GroupOption {
	mustPositive("idle timeout", int64(d))
	return func(c *groupConfig) { c.idle = d }
}

// Group is a family of circuits sharing one [Config], one circuit per key,
// named name+"/"+key and created on first use: one per host, per tenant,
// per shard. Get one from [Factory.Group]. It is safe for concurrent use.
//
// Each circuit is an ordinary [Breaker] of the factory (so it is in the
// factory's store, its listeners' events, the exporters and the status
// page, under its name) whose [Breaker.Group] is the group's name. A
// circuit name under the group's name and "/" belongs to the group: the
// group may evict it.
//
// Eviction. A sweep runs every half idle timeout while the group holds
// circuits. A circuit that no call reached for a whole idle timeout (no
// [Group.Breaker] lookup of its key) is removed from the group and the
// factory (as by [Factory.Remove]) at the first sweep that finds it at
// rest, whatever its state, except:
//
//   - open: kept while its open period runs, since it protects; at its
//     end the circuit moves to half-open by itself, and an idle half-open
//     circuit is evicted (nobody is left to try it);
//   - isolated: kept until an operator closes it (or removes it), since
//     isolation is an operator's word;
//   - a trial lease of this process held (a half-open trial in flight),
//     or something on its way to the store (local transitions to push
//     after a store outage, queued results, rate counts to merge): kept
//     until the lease ends or the store has it.
//
// So a circuit no call reaches holds its place no longer than the idle
// timeout plus its open period (at most max(TTL, MaxTTL)) and one lease,
// isolated circuits and a store that does not answer aside.
//
// What an evicted circuit loses is local: with a shared store, the store
// keeps its record (open, half-open, failures pending), and the key's
// next call registers a new circuit that adopts it; without one, the key
// starts afresh, closed. (A [store.Memory] drops a record nobody watches
// any more: shared by factories, it keeps it while another one has the
// circuit.) A call admitted before the eviction (a closed call: closed
// circuits do not count their calls in flight) may report to the evicted
// breaker afterwards: that is harmless, it works on local state and
// reaches neither the store nor the key's new circuit.
//
// A circuit removed with [Factory.Remove] leaves the group too: its key
// gets a new circuit on its next call.
type Group struct {
	name string
	f    *Factory
	cfg  Config
	gc   groupConfig

	table    atomic.Pointer[keyTable] // every key but the hashed ones: the fast path (see group_keys.go)
	hashed   sync.Map                 // key -> *Breaker, the keys whose circuit name is hashed (see circuitName)
	full     atomic.Bool              // at maxKeys with nothing to evict: new keys share the overflow circuit
	overflow atomic.Pointer[Breaker]  // made on first need
	mu       sync.Mutex               // creation, eviction, the sweep; writes to table and hashed
	n        int                      // keys held (see deleteLocked, create)
	inflight int                      // keys in pending but not held: n + inflight is held to maxKeys
	pending  map[string]int           // keys being made: how many callers make each
	stop     func() bool              // stops the sweep timer; nil while none is armed
}

// Group returns the group named name, creating it with cfg and opts if
// the factory has none. The first registration of a name configures the
// group; a later one with a different Config or options gets the existing
// group and is reported to listeners as an [EventConfigConflict] whose
// Circuit is the group's name. Group panics if name is empty, a field of
// cfg is out of range or an exclude matcher is nil.
func (f *Factory) Group(name string, cfg Config, opts ...GroupOption) *Group {
	gc := groupConfig{maxKeys: DefaultMaxKeys, idle: DefaultIdleTimeout}
	for _, o := range opts {
		o(&gc)
	}
	if v, ok := f.groups.Load(name); ok {
		return f.groupAgain(v.(*Group), cfg, gc)
	}
	if name == "" {
		panic("purgatory: Group: empty name")
	}
	mustMatchers(name, cfg)
	f.settingsFor(name, cfg) // checks the values
	g := &Group{name: name, f: f, cfg: cfg, gc: gc}
	v, loaded := f.groups.LoadOrStore(name, g)
	if loaded {
		return f.groupAgain(v.(*Group), cfg, gc)
	}
	return g
}

func (f *Factory) groupAgain(g *Group, cfg Config, gc groupConfig) *Group {
	if keyOf(cfg) == keyOf(g.cfg) && sameMatchers(g.cfg.Exclude, cfg.Exclude) && sameMatchers(g.cfg.Ignore, cfg.Ignore) && gc == g.gc {
		return g
	}
	f.listeners.emit(Event{Kind: EventConfigConflict, Circuit: g.name, Config: g.Config(),
		Err: fmt.Errorf("purgatory: group %q is registered with %s maxkeys=%d idle=%s; ignoring %s maxkeys=%d idle=%s",
			g.name, describe(configOf(f.settingsFor(g.name, g.cfg), g.cfg)), g.gc.maxKeys, g.gc.idle,
			describe(configOf(f.settingsFor(g.name, cfg), cfg)), gc.maxKeys, gc.idle)})
	return g
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Config returns the configuration the group's circuits are made with.
func (g *Group) Config() Config { return g.cfg }

// Group returns the name of the [Group] b belongs to, or "" for a circuit
// made with [Factory.Breaker].
func (b *Breaker) Group() string { return b.group }

// Breaker returns the circuit for key, creating it on first use. For a key
// that has a circuit it takes no lock and allocates nothing (it probes a
// lock-free table, or, for the hashed keys below, a lock-free map, and
// sets a flag the sweep reads).
//
// Circuit names. A key is used verbatim, name+"/"+key, whatever it holds:
// '/', spaces, braces, dots, colons. Other names are:
//
//   - the empty key (a nil pointer in a generated key= chain gives it):
//     name+"/~empty", one circuit shared by every call without a key;
//   - a key that begins with '~': the key with one more '~' in front
//     ("~x" is name+"/~~x"), so that no key takes a special name;
//   - a key longer than [MaxKeyLen] bytes, or that is not valid UTF-8 or
//     holds control characters (a newline, say): name+"/~" + 16 hex digits
//     of its SHA-256 + "~" + its first 64 bytes, each invalid or control
//     character as '?'. Two such keys share a circuit only if the 64-bit
//     hash collides. The lookup of such a key computes no SHA-256 (the
//     group is keyed by the key itself), but the map lookup hashes and
//     compares the whole key, in time that grows with its length
//     (BenchmarkGroup/Lookup10KB against BenchmarkGroup/Lookup).
//
// Past MaxKeys. A new key when the group holds [WithMaxKeys] circuits
// first evicts a circuit at rest that no call reached since the last
// sweep (least recently used, to the sweep's precision): closed with no
// failures pending, or idle for a whole idle timeout (see [Group]). If
// there is none, the key shares the group's overflow circuit,
// name+"/~overflow" (made on first need, not counted in MaxKeys, never
// evicted), until a sweep runs; while the group is in that state a new
// key's lookup takes no lock either. Open circuits are not evicted to
// make room, so that a flood of new keys cannot flush the circuits of
// hosts that are down; as the idle ones come to rest, the sweeps free
// their places.
func (g *Group) Breaker(key string) *Breaker {
	t := g.table.Load()
	if t == nil || len(key) > MaxKeyLen {
		return g.lookup(key)
	}
	// keyTable.find, by hand: a call less on the fast path.
	h := maphash.String(t.seed, key)
	gs := t.groups
	i, _ := bits.Mul64(h, uint64(len(gs)))
	tag := lsbs * (tagLive | h&0x7f)
	for {
		grp := &gs[i]
		w := grp.tags.Load()
		x := w ^ tag
		for m := (x - lsbs) &^ x & msbs; m != 0; m &= m - 1 {
			b := grp.slots[bits.TrailingZeros64(m)/8&7].Load()
			if b == nil || keyOfName(b.name[len(g.name)+1:]) != key {
				continue
			}
			if b.flags.v.Load()&(flagUsed|flagDetached) == flagUsed {
				return b // marked since the last sweep, in the factory: nothing to do
			}
			return g.hit(b, key)
		}
		if (w-lsbs)&^w&msbs != 0 {
			return g.lookup(key)
		}
		if i++; i == uint64(len(gs)) {
			i = 0
		}
	}
}

// hit returns b, key's circuit, found by a lookup.
func (g *Group) hit(b *Breaker, key string) *Breaker {
	if fl := b.flags.v.Load(); fl&(flagUsed|flagDetached) != flagUsed {
		if fl&flagUsed == 0 {
			// Written only once per sweep: no line every call writes. Its
			// old value says whether the sweep claimed b first (see
			// flags.claim).
			fl = b.flags.v.Or(flagUsed)
		}
		if fl&flagDetached != 0 && !g.f.closed.Load() {
			return g.create(key) // removed from the factory by somebody else
		}
	}
	return b // after Factory.Close every circuit is detached: keep it
}

// lookup finds a key the table did not have: a hashed one, a new one, or
// one made since.
//
//go:noinline
func (g *Group) lookup(key string) *Breaker {
	if v, ok := g.hashed.Load(key); ok {
		return g.hit(v.(*Breaker), key)
	}
	if g.full.Load() {
		if o := g.overflow.Load(); o != nil {
			// Looked for again once the group is seen full: a key made
			// since the table was read (before the group filled up)
			// keeps its circuit.
			if b := g.held(key); b != nil {
				return g.hit(b, key)
			}
			return o
		}
	}
	return g.create(key)
}

// Len returns how many circuits the group holds, the overflow circuit not
// included.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	g.eachLocked(func(string, *Breaker) bool { n++; return true })
	return n
}

// Range calls fn for each key of the group and its circuit, in no
// particular order, until fn returns false: the keys the group held when
// Range was called. The overflow circuit is not included. fn may call the
// group.
func (g *Group) Range(fn func(key string, b *Breaker) bool) {
	type held struct {
		key string
		b   *Breaker
	}
	g.mu.Lock()
	all := make([]held, 0, g.n)
	g.eachLocked(func(key string, b *Breaker) bool {
		all = append(all, held{key, b})
		return true
	})
	g.mu.Unlock()
	for _, h := range all {
		if !fn(h.key, h.b) {
			return
		}
	}
}

// Overflow returns the group's overflow circuit, or nil if no key has
// needed it.
func (g *Group) Overflow() *Breaker { return g.overflow.Load() }
