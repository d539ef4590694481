package runtime

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// State is the state of a circuit: [Closed], [Open] or [HalfOpen].
type State = store.State

// The states of a circuit.
const (
	Closed   = store.Closed
	Open     = store.Open
	HalfOpen = store.HalfOpen
)

// Defaults of a factory made without options.
const (
	DefaultThreshold = 5
	DefaultTTL       = 30 * time.Second
	DefaultTrials    = 1
)

// Config configures one circuit. Zero fields take the factory's defaults.
type Config struct {
	Threshold int                // consecutive failures that open the circuit
	TTL       time.Duration      // how long the circuit stays open
	Trials    int                // calls let through at once while half-open
	Exclude   []func(error) bool // errors that are returned but not counted as failures

	// FailureRate, in (0, 1], opens the circuit when, over the rolling
	// Window, at least MinCalls calls were recorded and failures/calls >=
	// FailureRate. Zero disables the rate policy. With FailureRate set and
	// Threshold zero, only the rate opens the circuit.
	FailureRate float64
	Window      time.Duration // length of the rolling window (default 30s when FailureRate is set)
	MinCalls    int           // calls needed in the window before the rate applies (default 20)
	// SlowCall makes a call that takes longer count as a failure; its
	// result is returned unchanged. Zero disables it.
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

// WithExclude adds matchers for errors that no breaker of the factory counts
// as failures (see [Is] and [As]). They apply before each circuit's own.
func WithExclude(matchers ...func(error) bool) Option {
	return func(f *Factory) { f.defaults.Exclude = append(f.defaults.Exclude, matchers...) }
}

// WithStore sets where circuit state is kept; the default is a new
// in-memory store of the factory's own.
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

	mu       sync.Mutex
	breakers map[string]*Breaker
}

// NewFactory returns a factory with the given options.
func NewFactory(opts ...Option) *Factory {
	f := &Factory{
		defaults: Config{Threshold: DefaultThreshold, TTL: DefaultTTL, Trials: DefaultTrials},
		clock:    systemClock{},
		breakers: make(map[string]*Breaker),
	}
	for _, o := range opts {
		o(f)
	}
	if f.store == nil {
		f.store = store.NewMemory()
	}
	return f
}

// Default returns the process-wide factory: default settings, in-memory
// store. Generated constructors use it when given a nil factory.
func Default() *Factory { return defaultFactory() }

var defaultFactory = sync.OnceValue(func() *Factory { return NewFactory() })

// AddListener adds a listener to every breaker of the factory, present and
// future, and returns a function that removes it. Both may be called at any
// time, also while calls run.
func (f *Factory) AddListener(l Listener) (remove func()) { return f.listeners.add(l) }

// Breaker returns the breaker named name, creating it with cfg if the
// factory has none. The first registration of a name configures its
// circuit: a later call with a different configuration gets the existing
// breaker and is reported to listeners as an [EventConfigConflict]. With a
// shared store, the first registration across all processes wins.
//
// Breaker panics if a field of cfg is negative.
func (f *Factory) Breaker(name string, cfg Config) *Breaker {
	cfg = f.resolve(cfg)
	f.mu.Lock()
	b, ok := f.breakers[name]
	if !ok {
		b = &Breaker{name: name, f: f, cfg: cfg, trialErr: &OpenError{Circuit: name, halfOpen: true},
			ready: make(chan struct{})}
		f.breakers[name] = b
	}
	f.mu.Unlock()
	if !ok {
		b.register()
		close(b.ready)
		return b
	}
	<-b.ready
	if b.settings() != settingsOf(cfg) {
		f.conflict(name, b.cfg, cfg)
	}
	return b
}

// Lookup returns the breaker named name if the factory has made one. Use it
// to reach a circuit by name (to read its state, or to Open or Close it)
// without registering it.
func (f *Factory) Lookup(name string) (*Breaker, bool) {
	f.mu.Lock()
	b, ok := f.breakers[name]
	f.mu.Unlock()
	if ok {
		<-b.ready
	}
	return b, ok
}

func (f *Factory) resolve(cfg Config) Config {
	mustNotNegative := func(what string, v int64) {
		if v < 0 {
			panic(fmt.Sprintf("purgatory: %s must not be negative, got %d", what, v))
		}
	}
	mustNotNegative("threshold", int64(cfg.Threshold))
	mustNotNegative("ttl", int64(cfg.TTL))
	mustNotNegative("trials", int64(cfg.Trials))
	if cfg.Threshold == 0 {
		cfg.Threshold = f.defaults.Threshold
	}
	if cfg.TTL == 0 {
		cfg.TTL = f.defaults.TTL
	}
	if cfg.Trials == 0 {
		cfg.Trials = f.defaults.Trials
	}
	if len(f.defaults.Exclude) > 0 {
		cfg.Exclude = append(append([]func(error) bool(nil), f.defaults.Exclude...), cfg.Exclude...)
	}
	return cfg
}

func (f *Factory) conflict(name string, inForce, wanted Config) {
	f.listeners.emit(Event{
		Kind:    EventConfigConflict,
		Circuit: name,
		Config:  inForce,
		Err: fmt.Errorf("purgatory: circuit %q is registered with %s; ignoring %s",
			name, describe(inForce), describe(wanted)),
	})
}

func settingsOf(c Config) store.Settings {
	return store.Settings{Threshold: c.Threshold, TTL: c.TTL, Trials: c.Trials}
}

func describe(c Config) string {
	return fmt.Sprintf("threshold=%d ttl=%s trials=%d", c.Threshold, c.TTL, c.Trials)
}

// storeCtx bounds store calls made outside any caller's context.
func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Second)
}
