package runtime

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: the Breaker type, its field groups, and its public API.

// Breaker guards calls to one circuit. Get one from [Factory.Breaker]; it is
// safe for concurrent use. A factory has one Breaker per circuit name.
//
// The view word comes first; the other fields come in groups (values, no
// pointer between Allow and the view word), each labelled by who may touch
// it; the last, replica, also holds the methods that change the circuit's
// local state. What only some circuits need is behind a pointer, each part with the
// methods that work on it: a rate circuit's rater (rate.go; made at
// registration), the link to a store (storeLink: link.go, answers.go,
// degraded.go, push.go; made with the breaker when the factory has a
// store), and the state of a circuit that left the closed state (rare:
// its timers and trial claims, replica.go and trial.go; made on first
// need). What an idle circuit costs: see Factory.Remove.
type Breaker struct {
	// view is everything the hot path needs, in one word: Allow and Done
	// read it and nothing else on a closed success. Written only under mu
	// (setLocked, and the few places that set or clear a flag); a direct
	// field, first, so that reading it is one load off the pointer (a
	// field of an embedded group would put Allow over the inlining
	// budget). Its layout:
	//
	//	bits 0-1   state (Closed, Open, HalfOpen, Isolated)      stateMask
	//	bit  2     closed: failures pending, a success resets     pendingBit
	//	           open: RetryAfter is stale, refresh it          staleBit
	//	bit  3     the factory counts calls (Factory.CountCalls)  countBit
	//	bit  4     closed: a rate circuit, count into its window  rateBit
	//	bit  5     closed: slow calls are timed, read the clock   slowBit
	//	bit  6     half-open: every trial slot taken, reject      fullBit
	//	bit  7     never in the view: marks a token               tokenBit
	//	bits 8-63  the generation (stores keep them below 2^56)   genShift
	//
	// Bits 0-7 together are flagMask. Tokens, which reuse the word, are
	// described in view.go.
	view atomic.Uint64

	hot            // the rest of what a rejection reads: atomics, written under mu
	conf           // identity, configuration and parts: immutable once the breaker is registered
	counters       // atomic counters of outcomes and store errors
	flags    flags // lifecycle and link flags, a group's marks: one atomic word
	replica        // the local replica of the circuit: guarded by mu
}

// hot is the rest of what an open or half-open rejection reads. Each error
// is made by the transition that needs it (setLocked) and stored before the
// view says so: a circuit that never left the closed state has none.
type hot struct {
	openErr  atomic.Pointer[OpenError] // returned while open, or isolated
	trialErr atomic.Pointer[OpenError] // returned while half-open with every slot taken
}

// conf is the circuit's identity, configuration and parts. Set by the
// factory (newBreaker) before anybody else sees the breaker; register, under
// mu and before the breaker is ready, may replace the policy with one
// holding the store's settings, and makes a rate circuit's rater. Then
// immutable: read without a lock.
type conf struct {
	name    string
	f       *Factory
	*policy            // shared by the circuits registered with the same configuration
	rate    *rater     // a rate circuit's unmerged calls (see rate.go); nil for the others
	link    *storeLink // the link to the factory's store (see link.go); nil without one
	regMu   sync.Mutex // held by the registering goroutine until the breaker is ready (flagReady)
}

// policy is a circuit's configuration, immutable. A circuit registered
// with the same configuration as the one the factory registered last
// shares its policy (the keys of a group, per-key circuits made by one
// constructor, one after another), so that it costs a pointer; any other
// gets its own, and so does a circuit that takes the store's settings.
type policy struct {
	group    string             // the Group's name, "" for a circuit made with Factory.Breaker
	cfg      Config             // in force: the first registration's (without excludes)
	set      store.Settings     // cfg as the store keeps it
	exclude  []func(error) bool // the factory's, then the first registration's
	ignore   []func(error) bool // the first registration's
	regFirst regKey             // the scalar fields of the first registration's Config
}

// counters are counts only ever added to: atomics.
type counters struct {
	// stripes count successes and rejections when the factory counts
	// calls (countBit in the view): inline until goroutines collide on
	// them (see stripes.go).
	stripes                                  stripeSet
	failures, excludedN, ignoredN, storeErrs atomic.Uint64
}

// flags are the breaker's lifecycle and link flags, and its group's marks,
// in one atomic word.
type flags struct{ v atomic.Uint32 }

const (
	flagReady    = 1 << iota // registered: lookups need not wait on regMu
	flagDegraded             // the last store call failed
	flagApplied              // an Applied error was reported (see reportApplied)
	flagDetached             // the factory dropped the circuit or was closed: local state only

	// A circuit of a Group: what its sweep reads (see group.go), kept here
	// rather than in an entry of the group's, which would cost every key.
	flagUsed  // a lookup of its key reached it since the group's last sweep
	flagIdle  // with flagIdle2: how many sweeps in a row found it unused, 0 to 2 (written under the group's mu)
	flagIdle2 // the count's high bit

	idleMask = flagIdle | flagIdle2
)

func (f *flags) has(m uint32) bool { return f.v.Load()&m != 0 }

// set sets m and reports whether it was set already.
func (f *flags) set(m uint32) bool { return f.v.Or(m)&m != 0 }

func (f *flags) clear(m uint32) { f.v.And(^m) }

// claim is a group's sweep taking a circuit it found unused: it sets
// flagDetached unless a lookup set flagUsed meanwhile, in one
// compare-and-swap, so that the one of the two that comes first wins and
// no lookup hands out a circuit the sweep is evicting (a lookup that finds
// it detached makes the key a new circuit: see Group.hit). It reports
// whether the sweep won.
func (f *flags) claim() bool {
	fl := f.v.Load()
	return fl&flagUsed == 0 && f.v.CompareAndSwap(fl, fl|flagDetached)
}

// replica is the circuit as this process sees it and its queued events,
// every field guarded by mu (but b), and what changes them: installing a
// snapshot and the view word made of it (replica.go, view.go), applying an
// operation locally or through the store link (degraded.go, link.go),
// pushing results (push.go), a trial's result (trial.go), registration
// and detaching (link.go), delivering events (events.go). Its methods are
// the breaker's, promoted; Breaker itself keeps the public API and the
// call path. What a closed circuit that never met trouble does not need is
// in rare, made on first use.
type replica struct {
	b      *Breaker // the breaker that holds it: immutable
	mu     sync.Mutex
	snap   store.Snapshot // the circuit as this process sees it
	events eventQueue     // guarded by mu; its queued and last are atomics, also read without it
	rare   *rare          // nil until needed: read it through peek, write it through edit
}

// rare is the part of the replica a closed circuit that never tripped,
// never held a trial and never lost its store does without (a rate circuit
// without a store makes it, and its window, at its first merge), and what works
// on it: the timers of open periods and trial leases, the half-open
// trials' claims (replica.go, trial.go). Its fields are guarded by the
// breaker's mu. Once made it stays, so whoever read a view that is not
// closed may follow b.rare without the lock: it was made, under mu, before
// that view was stored.
type rare struct {
	b        *Breaker      // its breaker: immutable
	window   *store.Window // the local rolling window, used while degraded and without a store; made on first use
	retryAt  time.Time     // while degraded, store calls wait until then
	diverged bool          // snap moved on by itself while degraded
	unreg    bool          // registration failed: the retry timer registers again (see registerAgain)
	stale    bool          // open: openErr's RetryAfter wants refreshing (see refreshOpenErr)
	base     uint64        // the store's Seq when snap diverged
	baseGen  uint64        // the generation snap diverged from (see reconcile)
	leases   leases        // trial slots held by this process's calls, in this generation
	timer    func() bool   // stops the open/lease timer
	retry    func() bool   // stops the reconciliation retry timer
	openedAt time.Time
	trans    *Transitions // state changes so far; made by the first one
}

// noRare is what peek returns before rare is made: all zero, never written.
var noRare rare

// peek returns the rare state to read, all zero if it was never made.
// b.mu is held.
func (rep *replica) peek() *rare {
	if rep.rare != nil {
		return rep.rare
	}
	return &noRare
}

// storeless reports whether the circuit works on local state only: its
// factory has no store, or dropped it or was closed (detached).
func (rep *replica) storeless() bool {
	return rep.b.link == nil || rep.b.flags.has(flagDetached)
}

// edit returns the rare state to write, made if need be. b.mu is held.
func (rep *replica) edit() *rare {
	if rep.rare == nil {
		rep.rare = &rare{b: rep.b}
	}
	return rep.rare
}

// Token identifies an admitted call: [Breaker.Allow] returns it and
// [Breaker.Done] takes it back, so that results of calls admitted in an
// earlier generation of the circuit are ignored. It is the view word the
// call was admitted under: the word itself for a call Done may finish on
// its fast path, else marked with tokenBit (see the view word).
type Token uint64

// Name returns the circuit's name.
func (b *Breaker) Name() string { return b.name }

// Config returns the configuration in force.
func (b *Breaker) Config() Config {
	cfg := b.cfg
	cfg.Exclude, cfg.Ignore = b.exclude, b.ignore
	return cfg
}

// State returns the circuit's state as this process sees it.
func (b *Breaker) State() State { return State(b.view.Load() & stateMask) }

// Allow asks to make a call. If the circuit lets it through, Allow returns
// a token to hand to [Breaker.Done] with the call's result; otherwise it
// returns an [*OpenError]. Every allowed call must be reported to Done,
// once.
func (b *Breaker) Allow(ctx context.Context) (t Token, err error) {
	// Kept within the inlining budget: a closed, untimed view is a token
	// as it is (its other flags concern Done).
	if t = Token(b.view.Load()); t&(stateMask|slowBit) != 0 {
		t, err = b.allowSlow(ctx)
	}
	return t, err
}

// Done reports the result of a call admitted by [Breaker.Allow].
//
// A nil error, or one that an exclude matcher matches, is a success (an
// excluded one is counted apart); context.Canceled is neither when ctx is
// done or nil (nil: no context is known for the call, so a cancellation
// can only be the caller's), nor is an error an ignore matcher matches
// (Config.Ignore); anything else is a failure, and so is a call
// that took longer than Config.SlowCall. Results of calls admitted before
// the circuit last changed state are ignored, and so is a second report
// of a half-open trial. A closed call must be reported once: a second
// report counts again (detecting it would cost every call).
//
// The store work Done causes is bounded by the store's own timeout, not by
// ctx, which may be finished already.
func (b *Breaker) Done(ctx context.Context, t Token, err error) {
	// Fast path, within the inlining budget: the view is closed with no
	// flag, in the token's generation (a trial's or a timed token never
	// matches one).
	if err != nil || b.view.Load() != uint64(t)&^flagMask {
		b.doneSlow(ctx, t, err)
	}
}

// Do calls fn through the breaker and returns its error, or an
// [*OpenError] without calling fn when the circuit rejects the call. A panic
// in fn counts as a failure and goes on unwinding. Do panics if fn is nil.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	if fn == nil {
		panic(fmt.Sprintf("purgatory: Do on circuit %q with a nil func", b.name))
	}
	t, err := b.Allow(ctx)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			b.Done(ctx, t, ErrPanicked)
		}
	}()
	err = fn(ctx)
	done = true
	b.Done(ctx, t, err)
	return err
}

// Open opens the circuit now, as if the threshold had been reached: it
// rejects calls for the open period, then lets trials through.
func (b *Breaker) Open() { b.force(Open) }

// Close closes the circuit now and clears its counts. It also ends an
// isolation.
func (b *Breaker) Close() { b.force(Closed) }

// Isolate holds the circuit open until [Breaker.Close] (or Open) is
// called, whatever its TTL: its state is [Isolated] and its rejections say
// so. With a shared store, every process sharing the circuit isolates it.
func (b *Breaker) Isolate() { b.force(Isolated) }

// force moves the circuit by hand.
func (b *Breaker) force(to State) {
	gen := word(b.view.Load()).gen() // the snapshot's: setLocked writes both under mu
	b.update(nil, gen, &store.Change{Kind: store.Force, To: to}, nil)
}

// wait returns once b is registered.
func (b *Breaker) wait() {
	if !b.flags.has(flagReady) {
		b.regMu.Lock() // the registering goroutine holds it until then
		b.regMu.Unlock()
	}
}
