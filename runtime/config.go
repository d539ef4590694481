package runtime

import (
	"cmp"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: Config, the factory's options, and how a registration's
// Config resolves into store settings.

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

// DefaultClockSkew is the clock skew a factory tolerates unless
// [WithClockSkew] says otherwise.
const DefaultClockSkew = time.Second

// WithClockSkew sets the largest difference between the clocks of the
// processes sharing the factory's store that its breakers tolerate
// (DefaultClockSkew, 1s, unless set). A half-open trial lease ends at the
// claimer's clock's Until; this factory ends a lease claimed by anyone only
// once its own clock is past Until + d, so that a lease is never cut short
// by clocks that disagree by up to d, and a trial that never reports holds
// its slot for at most d longer. Set the same d in every process. A factory
// without a store has one clock and ignores it. It panics if d < 0 or d >
// 7 days. See "Clocks" in the package doc.
func WithClockSkew(d time.Duration) Option {
	if d < 0 || d > store.MaxPeriod {
		panic(fmt.Sprintf("purgatory: WithClockSkew(%s): not in [0, %s]", d, store.MaxPeriod))
	}
	return func(f *Factory) { f.skew = d }
}

func mustPositive(what string, v int64) {
	if v <= 0 {
		panic(fmt.Sprintf("purgatory: %s must be positive, got %d", what, v))
	}
}

// regKey is the comparable part of a Config.
type regKey struct {
	threshold, trials, minCalls int
	ttl, window, slow, maxTTL   time.Duration
	rate                        float64
}

func keyOf(b Config) regKey {
	return regKey{b.Threshold, b.Trials, b.MinCalls, b.TTL, b.Window, b.SlowCall, b.MaxTTL, b.FailureRate}
}

// resolve fills in the defaults of a new circuit's configuration and
// checks it.
func (f *Factory) resolve(name string, cfg Config) (Config, store.Settings) {
	mustMatchers(name, cfg)
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

// mustMatchers panics on a nil matcher in cfg.Exclude or cfg.Ignore.
func mustMatchers(name string, cfg Config) {
	for _, l := range [...]struct {
		what string
		ms   []func(error) bool
	}{{"exclude", cfg.Exclude}, {"ignore", cfg.Ignore}} {
		for i, m := range l.ms {
			if m == nil {
				panic(fmt.Sprintf("purgatory: circuit %q: %s matcher %d is nil", name, l.what, i))
			}
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

// funcID returns the identity of a function value: the address of its
// closure (a func value is a pointer to one), read through unsafe because
// nothing else gives it:
//   - Go compares func values only with nil;
//   - reflect.ValueOf(f).Pointer() (and %p, which uses it) gives the code
//     pointer, the same for every closure of one function literal: Is(ErrA)
//     and Is(ErrB) would look alike, and a registration that swaps one for
//     the other would be taken as the same list, its conflict dropped in
//     silence (the promise TestExcludeListConflict checks);
//   - a registry of matchers keyed by an ID would need Config.Exclude to
//     hold something other than func(error) bool, which the generated code
//     and users write.
//
// The address is a sound identity here: the breaker keeps the first
// registration's matchers, so their closures stay alive and no other
// closure can take their address; heap objects do not move. A function
// literal that captures nothing is one static closure, so evaluating it
// twice gives the same identity, as it should (the two behave alike).
func funcID(f func(error) bool) uintptr { return *(*uintptr)(unsafe.Pointer(&f)) }
