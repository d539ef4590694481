package runtime

import (
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// Factory creates and keeps named breakers. It is safe for concurrent use.
type Factory struct {
	defaults  Config
	store     store.Store
	clock     Clock
	listeners listeners

	breakers sync.Map   // name -> *Breaker; lock-free for names that exist
	groups   sync.Map   // name -> *Group
	mu       sync.Mutex // serialises the creation of circuits
	counting atomic.Bool
	closed   atomic.Bool
	pinged   atomic.Bool            // the store's Ping, if it has one, ran
	outage   atomic.Pointer[outage] // the store failed lately (see outage, degraded.go)
	private  bool                   // no store given: breakers keep circuit state themselves
	skew     time.Duration          // the clock skew tolerated (WithClockSkew)
	epoch    time.Time              // origin of timed tokens' microseconds (see micros)
	policy   *policy                // the last circuit's policy, guarded by mu (see policyFor)

	refreshMu sync.Mutex
	refreshed []*Breaker // open circuits whose RetryAfter was refreshed this tick
	ticking   bool
}

// NewFactory returns a factory with the given options.
func NewFactory(opts ...Option) *Factory {
	f := &Factory{
		defaults: Config{Threshold: DefaultThreshold, TTL: DefaultTTL, Trials: DefaultTrials},
		clock:    systemClock{},
		skew:     DefaultClockSkew,
	}
	for _, o := range opts {
		o(f)
	}
	f.epoch = f.clock.Now()
	if f.store == nil {
		// A store of its own, which nobody else can see: the breakers'
		// own state is the circuit's state, and no store call is needed.
		f.private = true
	}
	for _, m := range f.defaults.Exclude {
		if m == nil {
			panic("purgatory: WithExclude: nil matcher")
		}
	}
	return f
}

// Default returns the process-wide factory: default settings, in-memory
// store. Generated constructors use it when given a nil factory.
func Default() *Factory { return defaultFactory() }

var defaultFactory = sync.OnceValue(func() *Factory { return NewFactory() })

// AddListener adds a listener to every breaker of the factory, present and
// future, and returns a function that removes it. Both may be called at any
// time, also while calls run and from a listener.
func (f *Factory) AddListener(l Listener) (remove func()) { return f.listeners.add(l) }

// Breaker returns the breaker named name, creating it with cfg if the
// factory has none. The first registration of a name configures its
// circuit: a later call with a different configuration (settings,
// exclude or ignore list) gets the existing breaker and is reported to listeners as
// an [EventConfigConflict]. With a shared store, the first registration's
// settings across all processes win.
//
// Exclude and Ignore lists are compared by identity: the same functions (top-level
// functions, or matchers from [Is] and [As], which return the same function
// for the same target) in the same order. So a generated constructor
// called twice registers the same list, and a hand-written closure made
// anew for each registration is reported as a conflict, never dropped in
// silence.
//
// Looking up an existing circuit takes no lock and allocates nothing.
// Registering a new one asks the store once (the settings in force and the
// state are the store's): with a store that may block, that call is bounded
// by the store's timeout (Redis: 50 ms by default) and, the first time, a
// permission check as long. Once a store call of the factory failed, new
// circuits registered within the back-off (a second) do not ask the store
// at all: they work on local state, report the store error, and register
// again after the back-off (and every back-off until the store answers),
// calls or not, adopting the store's record unless their own transitions
// wait to be pushed. So a frozen store holds one registration per back-off,
// not one per name. Lookups of existing names never wait for the store, and
// neither do calls. Breaker panics if a field of cfg is out of range or an
// exclude matcher is nil.
func (f *Factory) Breaker(name string, cfg Config) *Breaker { return f.breaker(name, cfg, "") }

// breaker is Breaker for a circuit of the group named group ("" for none).
func (f *Factory) breaker(name string, cfg Config, group string) *Breaker {
	if v, ok := f.breakers.Load(name); ok {
		return f.registerAgain(v.(*Breaker), cfg)
	}
	resolved, set := f.resolve(name, cfg)
	f.mu.Lock()
	if v, ok := f.breakers.Load(name); ok {
		f.mu.Unlock()
		return f.registerAgain(v.(*Breaker), cfg)
	}
	b := f.newBreaker(name, cfg, group, resolved, set)
	b.regMu.Lock() // until b is ready: see wait
	f.breakers.Store(name, b)
	if f.closed.Load() {
		// Made after Close: local state only, like the breakers Close
		// detached (a Close that began after this check detaches it).
		b.flags.set(flagDetached)
	}
	f.mu.Unlock()
	registered := false
	defer func() {
		if !registered {
			// The store (a Store of the user's) panicked: the panic goes
			// on, and the name is not left to a breaker nobody can wait
			// for. Who found it meanwhile gets it detached, on local state.
			f.breakers.CompareAndDelete(name, b)
			b.flags.set(flagDetached | flagReady)
			b.regMu.Unlock()
		}
	}()
	b.register(b.set)
	if !b.storeless() {
		stop := f.watch(b)
		b.mu.Lock()
		b.link.watch = stop
		b.mu.Unlock()
	}
	registered = true
	b.flags.set(flagReady)
	b.regMu.Unlock()
	b.drain()
	return b
}

// newBreaker returns the breaker of a new circuit, not registered yet:
// every field set at creation is set here (the rest are zero until
// register and the circuit's first change). cfg is the registration as
// asked, resolved and set what it resolves to. f.mu is held.
func (f *Factory) newBreaker(name string, cfg Config, group string, resolved Config, set store.Settings) *Breaker {
	b := &Breaker{conf: conf{name: name, f: f, policy: f.policyFor(cfg, group, resolved, set)}}
	b.replica.b = b
	if !f.private {
		_, batches := f.store.(store.FailureBatcher)
		b.link = &storeLink{b: b, batches: batches}
	}
	return b
}

// policyFor returns the policy of a new circuit: the last circuit's if it
// is the same (per-key circuits are made one after another with one
// configuration), else a new one. f.mu is held.
func (f *Factory) policyFor(cfg Config, group string, resolved Config, set store.Settings) *policy {
	inForce := resolved
	inForce.Exclude, inForce.Ignore = nil, nil
	p := f.policy
	if p != nil && p.group == group && p.set == set && p.regFirst == keyOf(cfg) && keyOf(p.cfg) == keyOf(inForce) &&
		sameMatchers(p.exclude, resolved.Exclude) && sameMatchers(p.ignore, resolved.Ignore) {
		return p
	}
	p = &policy{group: group, cfg: inForce, set: set, exclude: resolved.Exclude, ignore: resolved.Ignore, regFirst: keyOf(cfg)}
	f.policy = p
	return p
}

// registerAgain handles a registration of a name that exists.
func (f *Factory) registerAgain(b *Breaker, cfg Config) *Breaker {
	b.wait()
	sameExclude := sameMatchers(b.exclude[min(len(f.defaults.Exclude), len(b.exclude)):], cfg.Exclude) &&
		sameMatchers(b.ignore, cfg.Ignore)
	if keyOf(cfg) == b.regFirst && sameExclude {
		return b // the same registration again: the common case, kept cheap
	}
	if want := f.settingsFor(b.name, cfg); want != b.set || !sameExclude {
		wanted := configOf(want, cfg)
		b.mu.Lock()
		b.events.post(conflictEvent(b.name, b.Config(), wanted))
		b.mu.Unlock()
		b.drain()
	}
	return b
}

// Lookup returns the breaker named name if the factory has made one. Use
// it to reach a circuit by name (to read its state, or to Open, Close or
// Isolate it) without registering it. It takes no lock and allocates
// nothing.
func (f *Factory) Lookup(name string) (*Breaker, bool) {
	v, ok := f.breakers.Load(name)
	if !ok {
		return nil, false
	}
	b := v.(*Breaker)
	b.wait()
	return b, true
}

// Remove drops the named circuit from the factory and stops watching it in
// the store, for per-key circuits that are no longer called (one per host,
// say). It reports whether the factory had it. Breakers of the circuit
// still held keep working on local state only; a later Breaker call with
// the name registers it afresh.
//
// What a circuit costs while kept is measured, not quoted here, so that
// the figures cannot go stale: BenchmarkIdleClosedCircuit (an idle closed
// circuit, with and without call counting, with a failure-rate policy, on
// a memory store, and as the circuit of a [Group]'s key; run it with -cpu
// 1,8,32: the cost does not grow with the processors) and
// BenchmarkIdleOpenCircuits (open ones, timers included). What an idle
// closed circuit holds: the Breaker itself (its call counters inline, two
// words until goroutines collide on them, and only then per-processor
// lines: see stripes), the factory's map entry and its name; in a group,
// besides, a slot of the group's table (the group reads the key from the
// circuit's name and keeps what its sweep needs in the Breaker, so it
// holds no entry of its own, but for hashed keys); with a store, its link
// to the store. Its configuration is shared with the circuit registered
// just before it if that one has the same (see policy). What it needs once
// it trips, holds a trial or loses its store (timers, leases,
// reconciliation, transition counts), its open errors and its push queue
// are made on first use and kept; a rate circuit has its tally, and,
// without a store, its window from its first merge on.
func (f *Factory) Remove(name string) bool {
	v, ok := f.breakers.LoadAndDelete(name)
	if ok {
		b := v.(*Breaker)
		b.wait()
		b.detach()
		b.mu.Lock()
		b.events.post(Event{Kind: EventRemoved, Circuit: name})
		b.mu.Unlock()
		b.drain()
	}
	return ok
}

// Close delivers the results still on their way to the store, then stops
// the factory's store watches and reconciliation retries. Results reach a
// store that may block (Redis) from a pusher, off the caller's path (one
// round trip after Done returns): Close waits until those queued when it
// is called were sent, each store call bounded as usual, and at most
// closeWait (2 s) in all on the factory's clock (a listener that calls
// Close from a state change the pusher delivers waits that long), so that
// a process that stops right after a burst of failures still trips the
// circuit for the others.
// Breakers go on working after Close, on local state only, and so do
// breakers the factory makes after Close: they no longer read or write the
// store (they do not register there), an open circuit still moves to
// half-open at the end of its open period, and its RetryAfter is still
// refreshed while it rejects calls (the refresh timer runs only while some
// circuit of the factory rejects calls). Close does not close the store. It
// is idempotent.
func (f *Factory) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	f.settle()
	f.breakers.Range(func(_, v any) bool {
		b := v.(*Breaker)
		b.wait()
		b.detach()
		return true
	})
	return nil
}

// closeWait bounds how long Close waits for the results on their way to
// the store: two store calls' worth.
const closeWait = 2 * storeTimeout

// settle waits, at most closeWait, until the results queued for the store
// when it is called were sent (see Close).
func (f *Factory) settle() {
	var links []*storeLink
	f.breakers.Range(func(_, v any) bool {
		b := v.(*Breaker)
		b.wait()
		if l := b.link; l != nil && l.queued() {
			links = append(links, l)
		}
		return true
	})
	if len(links) == 0 {
		return
	}
	stop := make(chan struct{})
	defer f.clock.AfterFunc(closeWait, func() { close(stop) })()
	for _, l := range links {
		l.settle(stop) // the pushers run at once: the waits overlap
	}
}

// CountCalls turns on counting every call's outcome (see [Counts]) for
// every breaker of the factory, present and future. Exporters call it.
// Without it, successes and rejections are not counted, so that a closed
// success costs nothing more than it must; with it, they are counted in
// striped per-processor counters: no lock, no allocation, no line every
// core writes.
func (f *Factory) CountCalls() {
	f.mu.Lock() // a breaker made meanwhile is in the map, or sees counting on
	done := f.counting.Swap(true)
	f.mu.Unlock()
	if done {
		return
	}
	f.breakers.Range(func(_, v any) bool {
		b := v.(*Breaker)
		b.wait()
		b.mu.Lock()
		b.view.Store(b.viewOf(&b.snap))
		b.mu.Unlock()
		return true
	})
}

// watch watches c in the store through a weak pointer, so that a factory
// dropped without Close does not stay reachable from a shared store: when
// c is collected, its watch is stopped.
func (f *Factory) watch(b *Breaker) (stop func()) {
	wp := weak.Make(b)
	stop = f.store.Watch(b.name, func(s store.Snapshot) {
		if b := wp.Value(); b != nil {
			b.link.watched(s)
		}
	})
	goruntime.AddCleanup(b, func(stop func()) { stop() }, stop)
	return stop
}

// refreshEvery is how old an open circuit's RetryAfter may get while it is
// rejecting calls.
const refreshEvery = 10 * time.Millisecond

// stale schedules c's open error to be marked stale a refreshEvery from
// now. It runs one timer per factory, and only while circuits reject.
func (f *Factory) stale(c *Breaker) {
	f.refreshMu.Lock()
	defer f.refreshMu.Unlock()
	f.refreshed = append(f.refreshed, c)
	if !f.ticking { // also after Close: breakers still reject, and only while they do
		f.ticking = true
		f.clock.AfterFunc(refreshEvery, f.refreshTick)
	}
}

func (f *Factory) refreshTick() {
	f.refreshMu.Lock()
	list := f.refreshed
	f.refreshed = nil
	f.ticking = false
	f.refreshMu.Unlock()
	for _, c := range list {
		c.rare.markStale() // made when it opened, before it was listed
	}
}
