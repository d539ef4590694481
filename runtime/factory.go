package runtime

import (
	"cmp"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// State is the state of a circuit: [Closed], [Open], [HalfOpen] or
// [Isolated].
type State = store.State

// The states of a circuit.
const (
	Closed   = store.Closed
	Open     = store.Open
	HalfOpen = store.HalfOpen
	Isolated = store.Isolated
)

// Defaults of a factory made without options.
const (
	DefaultThreshold = 5
	DefaultTTL       = 30 * time.Second
	DefaultTrials    = 1
	DefaultWindow    = 30 * time.Second // with a FailureRate
	DefaultMinCalls  = 20               // with a FailureRate
)

// Config configures one circuit. Zero fields take the factory's defaults.
type Config struct {
	Threshold int                // consecutive failures that open the circuit
	TTL       time.Duration      // how long the circuit stays open
	Trials    int                // calls let through at once while half-open
	Exclude   []func(error) bool // errors that are returned but not counted as failures
	// Ignore lists errors that count as neither success nor failure (like
	// the caller's cancellation): a closed circuit's count is left as it
	// is, a half-open trial gives its slot back. Checked before Exclude.
	Ignore []func(error) bool

	// FailureRate, in (0, 1], opens the circuit when, over the rolling
	// Window, at least MinCalls calls were recorded and failures/calls >=
	// FailureRate. Zero disables the rate policy. With FailureRate set and
	// Threshold zero, only the rate opens the circuit.
	FailureRate float64
	Window      time.Duration // length of the rolling window (default 30s when FailureRate is set)
	MinCalls    int           // calls needed in the window before the rate applies (default 20)
	// SlowCall makes a call that takes longer count as a failure; its
	// result is returned unchanged. Zero disables it; at most MaxSlowCall
	// (7 days). Calls are timed in microseconds, exactly up to 12.7 days.
	SlowCall time.Duration
	// MaxTTL makes each failed half-open trial double the next open
	// period, up to MaxTTL; it goes back to TTL once the circuit closes.
	// Zero (or a MaxTTL not above TTL) keeps the open period at TTL.
	MaxTTL time.Duration
}

// Option configures a [Factory].
type Option func(*Factory)

// WithThreshold sets the default threshold (5 unless set). It panics if n < 1.
func WithThreshold(n int) Option {
	mustPositive("threshold", int64(n))
	return func(f *Factory) { f.defaults.Threshold = n }
}

// WithTTL sets the default open period (30s unless set). It panics if d <= 0.
func WithTTL(d time.Duration) Option {
	mustPositive("ttl", int64(d))
	return func(f *Factory) { f.defaults.TTL = d }
}

// WithTrials sets the default number of half-open trial calls (1 unless
// set). It panics if n < 1.
func WithTrials(n int) Option {
	mustPositive("trials", int64(n))
	return func(f *Factory) { f.defaults.Trials = n }
}

// WithFailureRate sets a default failure-rate policy: circuits open when,
// over window, at least minCalls calls were made and failed/calls >= rate
// (see Config.FailureRate). It panics if rate is not in (0, 1], window <= 0
// or minCalls < 1.
func WithFailureRate(rate float64, window time.Duration, minCalls int) Option {
	if !(rate > 0 && rate <= 1) {
		panic(fmt.Sprintf("purgatory: failure rate must be in (0, 1], got %v", rate))
	}
	mustPositive("window", int64(window))
	mustPositive("min calls", int64(minCalls))
	return func(f *Factory) {
		f.defaults.FailureRate, f.defaults.Window, f.defaults.MinCalls = rate, window, minCalls
	}
}

// WithSlowCall sets the default slow-call duration (see Config.SlowCall).
// It panics if d <= 0 or d > MaxSlowCall.
func WithSlowCall(d time.Duration) Option {
	mustPositive("slow call", int64(d))
	if d > MaxSlowCall {
		panic(fmt.Sprintf("purgatory: slow call must be at most %v, got %v", MaxSlowCall, d))
	}
	return func(f *Factory) { f.defaults.SlowCall = d }
}

// WithMaxTTL sets the default longest open period (see Config.MaxTTL). It
// panics if d <= 0.
func WithMaxTTL(d time.Duration) Option {
	mustPositive("max ttl", int64(d))
	return func(f *Factory) { f.defaults.MaxTTL = d }
}

// WithExclude adds matchers for errors that no breaker of the factory counts
// as failures (see [Is] and [As]). They apply before each circuit's own.
func WithExclude(matchers ...func(error) bool) Option {
	return func(f *Factory) { f.defaults.Exclude = append(f.defaults.Exclude, matchers...) }
}

// WithStore sets where circuit state is kept, to share it (a
// [store.Memory] shared by several factories, a Redis store shared by
// processes). Without it, each breaker keeps its circuit's state itself,
// as a store of the factory's own would, and makes no store call at all.
func WithStore(s store.Store) Option { return func(f *Factory) { f.store = s } }

// WithListener adds a listener (see also [Factory.AddListener]).
func WithListener(l Listener) Option { return func(f *Factory) { f.listeners.add(l) } }

// WithClock sets the time source (for tests; see package clocktest).
func WithClock(c Clock) Option { return func(f *Factory) { f.clock = c } }

func mustPositive(what string, v int64) {
	if v <= 0 {
		panic(fmt.Sprintf("purgatory: %s must be positive, got %d", what, v))
	}
}

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
	outage   atomic.Pointer[outage] // the store failed lately (see push.go)
	private  bool                   // no store given: breakers keep circuit state themselves

	refreshMu sync.Mutex
	refreshed []*Breaker // open circuits whose RetryAfter was refreshed this tick
	ticking   bool
}

// NewFactory returns a factory with the given options.
func NewFactory(opts ...Option) *Factory {
	f := &Factory{
		defaults: Config{Threshold: DefaultThreshold, TTL: DefaultTTL, Trials: DefaultTrials},
		clock:    systemClock{},
	}
	for _, o := range opts {
		o(f)
	}
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
// at all: they work on local state, report the store error, and meet the
// store at their first operation after it. So a frozen store holds one
// registration per back-off, not one per name. Lookups of existing names
// never wait for the store, and neither do calls. Breaker panics if a field of cfg is out of range or an exclude matcher
// is nil.
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
	b := &Breaker{}
	c := b
	c.name, c.f, c.cfg, c.set, c.ready, c.group = name, f, resolved, set, make(chan struct{}), group
	c.exclude, c.cfg.Exclude = resolved.Exclude, nil
	c.ignore, c.cfg.Ignore = resolved.Ignore, nil
	c.epoch = f.clock.Now()
	if f.counting.Load() {
		c.stripes = newStripes(false)
	}
	f.breakers.Store(name, b)
	if f.closed.Load() {
		// Made after Close: local state only, like the breakers Close
		// detached (a Close that began after this check detaches it).
		c.detached.Store(true)
	}
	f.mu.Unlock()
	c.regFirst = keyOf(cfg)
	c.register(c.set)
	if !f.private && !c.detached.Load() {
		stop := f.watch(b)
		c.mu.Lock()
		c.watch = stop
		c.mu.Unlock()
	}
	close(c.ready)
	c.isReady.Store(true)
	c.drain()
	return b
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

// sameMatchers reports whether a and b hold the same functions in the same
// order.
func sameMatchers(a, b []func(error) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if funcID(a[i]) != funcID(b[i]) {
			return false
		}
	}
	return true
}

// funcID returns the identity of a function value: its closure's address.
func funcID(f func(error) bool) uintptr { return *(*uintptr)(unsafe.Pointer(&f)) }

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
// Memory per circuit, while kept (BenchmarkIdleClosedCircuit, -cpu 1,8,32;
// BenchmarkIdleOpenCircuits): an idle closed circuit costs about 1.2 KiB
// (1,239 B with a short name), 80 B more with call counting on (an
// exporter; the exporters themselves keep nothing per circuit), the same at
// any core count: its counters take one cache line until goroutines collide
// on it, and only then per-processor lines (64 B each, four per processor,
// at most 64). A circuit of a keyed group costs about 140 B more (the
// group's entry); an open circuit about 1.5 KiB, its timer included. A
// closed circuit with a failure-rate policy costs about 1.45 KiB (1,482 B
// with -benchtime 1x: later rounds also count earlier factories' pending
// flush timers), also the same at any core count: the tally of its calls
// not merged yet spreads the same way.
//
// The 512 B aimed at is not reached. Of the 1,239 B, the Breaker itself
// takes 896 (840 rounded up by the allocator: its snapshot 96, settings
// kept three ways 232, three clock readings 72, store push queue 64,
// matcher lists 48, event queue 48), its ready channel 112, its three
// prepared rejection errors 96, the factory's map entry about 100.
// Reaching 512 B means moving the rarely used state (reconciliation,
// timers, push and event queues, the first registration's key) behind a
// pointer made on first use, as the local rolling window (176 B, used
// while the store is away) already is.
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

// Close stops the factory's store watches and reconciliation retries.
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
	f.breakers.Range(func(_, v any) bool {
		b := v.(*Breaker)
		<-b.ready
		b.detach()
		return true
	})
	return nil
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
		c := v.(*Breaker)
		<-c.ready
		c.mu.Lock()
		if c.stripes == nil {
			c.stripes = newStripes(false)
		}
		c.view.Store(c.word(c.snap))
		c.mu.Unlock()
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
			b.watched(s)
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
		c.markStale()
	}
}

// resolve fills in the defaults of a new circuit's configuration and
// checks it.
func (f *Factory) resolve(name string, cfg Config) (Config, store.Settings) {
	mustMatchers(name, cfg.Exclude)
	mustIgnore(name, cfg.Ignore)
	set := f.settingsFor(name, cfg)
	cfg = configOf(set, cfg)
	if cfg.SlowCall == 0 {
		cfg.SlowCall = f.defaults.SlowCall
	}
	cfg.Exclude = f.excludes(cfg.Exclude)
	return cfg, set
}

// settingsFor returns the settings cfg asks for, with the factory's
// defaults. It panics on values out of range. (The lookup of an existing
// circuit does not call it: see registerAgain.)
func (f *Factory) settingsFor(name string, cfg Config) store.Settings {
	for _, c := range []struct {
		what string
		bad  bool
		v    any
	}{
		{"threshold", cfg.Threshold < 0, cfg.Threshold},
		{"ttl", cfg.TTL < 0, cfg.TTL},
		{"trials", cfg.Trials < 0, cfg.Trials},
		{"failure rate", !(cfg.FailureRate >= 0 && cfg.FailureRate <= 1), cfg.FailureRate},
		{"window", cfg.Window < 0, cfg.Window},
		{"min calls", cfg.MinCalls < 0, cfg.MinCalls},
		{"slow call", cfg.SlowCall < 0, cfg.SlowCall},
		{"max ttl", cfg.MaxTTL < 0, cfg.MaxTTL},
	} {
		if c.bad {
			panic(fmt.Sprintf("purgatory: circuit %q: %s out of range: %v", name, c.what, c.v))
		}
	}
	if cfg.SlowCall > MaxSlowCall {
		panic(fmt.Sprintf("purgatory: circuit %q: slow call out of range: %v (at most %v)", name, cfg.SlowCall, MaxSlowCall))
	}
	d := f.defaults
	s := store.Settings{Threshold: cfg.Threshold, TTL: cmp.Or(cfg.TTL, d.TTL), Trials: cmp.Or(cfg.Trials, d.Trials),
		MaxTTL: cmp.Or(cfg.MaxTTL, d.MaxTTL), FailureRate: cmp.Or(cfg.FailureRate, d.FailureRate)}
	if s.Threshold == 0 && cfg.FailureRate == 0 {
		s.Threshold = d.Threshold // with a rate of its own and no threshold, only the rate applies
	}
	if s.FailureRate > 0 {
		s.Window = cmp.Or(cfg.Window, d.Window, DefaultWindow)
		s.MinCalls = cmp.Or(cfg.MinCalls, d.MinCalls, DefaultMinCalls)
	}
	if s.MaxTTL <= s.TTL {
		s.MaxTTL = 0
	}
	if err := s.Check(); err != nil {
		panic(fmt.Sprintf("purgatory: circuit %q: %v", name, err))
	}
	return s
}

// excludes returns the factory's matchers followed by own.
func (f *Factory) excludes(own []func(error) bool) []func(error) bool {
	if len(f.defaults.Exclude) == 0 {
		return own
	}
	return append(slices.Clip(f.defaults.Exclude), own...)
}

func mustMatchers(name string, ms []func(error) bool) {
	for i, m := range ms {
		if m == nil {
			panic(fmt.Sprintf("purgatory: circuit %q: exclude matcher %d is nil", name, i))
		}
	}
}

func mustIgnore(name string, ms []func(error) bool) {
	for i, m := range ms {
		if m == nil {
			panic(fmt.Sprintf("purgatory: circuit %q: ignore matcher %d is nil", name, i))
		}
	}
}

func conflictEvent(name string, inForce, wanted Config) Event {
	return Event{
		Kind:    EventConfigConflict,
		Circuit: name,
		Config:  inForce,
		Err: fmt.Errorf("purgatory: circuit %q is registered with %s; ignoring %s",
			name, describe(inForce), describe(wanted)),
	}
}

// configOf returns cfg with the settings of s.
func configOf(s store.Settings, cfg Config) Config {
	cfg.Threshold, cfg.TTL, cfg.Trials, cfg.MaxTTL = s.Threshold, s.TTL, s.Trials, s.MaxTTL
	cfg.FailureRate, cfg.Window, cfg.MinCalls = s.FailureRate, s.Window, s.MinCalls
	return cfg
}

func describe(c Config) string {
	s := fmt.Sprintf("threshold=%d ttl=%s trials=%d", c.Threshold, c.TTL, c.Trials)
	if c.MaxTTL > 0 {
		s += fmt.Sprintf(" maxttl=%s", c.MaxTTL)
	}
	if c.FailureRate > 0 {
		s += fmt.Sprintf(" rate=%g%% window=%s min=%d", c.FailureRate*100, c.Window, c.MinCalls)
	}
	return s
}

// storeBackoff is how long a breaker stays off a store that failed.
const storeBackoff = time.Second
