package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// The view word: everything the hot path needs in one atomic uint64.
//
//	bits 0-1   state (Closed, Open, HalfOpen)
//	bit  2     failures pending (closed only): a success must reset them
//	bits 32-63 low 32 bits of the generation
const (
	stateMask    = 0b011
	pendingBit   = 0b100
	fastMask     = stateMask | pendingBit
	genShift     = 32
	storeBackoff = time.Second // how long a breaker stays off a failing store
)

// Token identifies an admitted call: [Breaker.Allow] returns it and
// [Breaker.Done] takes it back, so that results of calls admitted in an
// earlier generation of the circuit are ignored.
type Token uint64

// Breaker guards calls to one circuit. Get one from [Factory.Breaker]; it is
// safe for concurrent use.
type Breaker struct {
	view atomic.Uint64 // the hot path reads only this (see the view word)

	name     string
	f        *Factory
	cfg      Config
	openErr  atomic.Pointer[OpenError] // returned while open; refreshed by the timer
	trialErr *OpenError                // returned while half-open and the trials are taken

	mu        sync.Mutex
	snap      store.Snapshot // the newest snapshot adopted
	degraded  bool           // the last store call failed
	retryAt   time.Time      // while degraded, store calls wait until then
	stopTimer func() bool

	ready chan struct{} // closed once registered
}

// register registers the breaker's circuit with the store and starts
// watching it. The factory calls it once, before anybody else sees b.
func (b *Breaker) register() {
	f := b.f
	b.openErr.Store(&OpenError{Circuit: b.name, RetryAfter: b.cfg.TTL})
	ctx, cancel := storeCtx()
	defer cancel()
	set, snap, err := f.store.Register(ctx, b.name, settingsOf(b.cfg))
	if err != nil {
		b.storeFailed(err)
		snap = store.New()
	}
	wanted := b.cfg
	if err == nil && set != settingsOf(b.cfg) {
		b.cfg.Threshold, b.cfg.TTL, b.cfg.Trials = set.Threshold, set.TTL, set.Trials
	}
	b.mu.Lock()
	b.setLocked(snap)
	b.mu.Unlock()
	f.listeners.emit(Event{Kind: EventCreated, Circuit: b.name, Config: b.cfg})
	if b.settings() != settingsOf(wanted) {
		f.conflict(b.name, b.cfg, wanted)
	}
	f.store.Watch(b.name, b.adopt)
}

// Name returns the circuit's name.
func (b *Breaker) Name() string { return b.name }

// Config returns the configuration in force.
func (b *Breaker) Config() Config { return b.cfg }

// State returns the circuit's state as this process sees it.
func (b *Breaker) State() State { return State(b.view.Load() & stateMask) }

// Allow asks to make a call. If the circuit lets it through, Allow returns
// a token to hand to [Breaker.Done] with the call's result; otherwise it
// returns an [*OpenError]. Every allowed call must be reported to Done.
func (b *Breaker) Allow(ctx context.Context) (t Token, err error) {
	// Kept within the inlining budget: closed is state 0.
	if t = Token(b.view.Load()); t&stateMask != 0 {
		t, err = b.allowSlow(ctx)
	}
	return t, err
}

// Done reports the result of a call admitted by [Breaker.Allow]. A nil
// error, or one that Config.Exclude matches, is a success; a
// context.Canceled when ctx itself is done is neither (the caller gave up);
// anything else is a failure. Results of calls admitted before the circuit
// last changed state are ignored.
func (b *Breaker) Done(ctx context.Context, t Token, err error) {
	// Fast path, within the inlining budget: the view is closed with no
	// failures pending in the token's generation. Every state change starts
	// a new generation, so a token of that generation was admitted closed.
	if err != nil || b.view.Load() != uint64(t)&^fastMask {
		b.doneSlow(ctx, t, err)
	}
}

// Do calls fn through the breaker and returns its error, or an
// [*OpenError] without calling fn when the circuit rejects the call. A panic
// in fn counts as a failure and goes on unwinding.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
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
// rejects calls for the TTL, then lets trials through.
func (b *Breaker) Open() { b.force(Open) }

// Close closes the circuit now and clears its failure count.
func (b *Breaker) Close() { b.force(Closed) }

func (b *Breaker) force(to State) {
	ctx, cancel := storeCtx()
	defer cancel()
	b.update(ctx, b.gen(), true,
		func(ctx context.Context, op store.Op) (store.Snapshot, error) { return b.f.store.Force(ctx, op, to) },
		func(s store.Snapshot, op store.Op) (store.Snapshot, bool) {
			return s.Force(op.Settings, to, op.Now), true
		})
}

// allowSlow handles a circuit that is not closed: a small frame for the
// common open rejection, the trial claim out of line.
func (b *Breaker) allowSlow(ctx context.Context) (Token, error) {
	if b.view.Load()&stateMask == uint64(Open) {
		// reject, written out: called, it costs this path about 1 ns
		// (it is over the inlining budget).
		err := b.openErr.Load()
		if b.f.listeners.active() {
			b.rejected(err)
		}
		return 0, err
	}
	return b.allowTrial(ctx)
}

func (b *Breaker) allowTrial(ctx context.Context) (Token, error) {
	w := b.view.Load()
	for {
		switch State(w & stateMask) {
		case Closed:
			return Token(w), nil
		case Open:
			return 0, b.reject(b.openErr.Load())
		}
		// Half-open: claim a trial slot.
		gen, ok := b.genOf(w)
		if !ok {
			w = b.view.Load()
			continue
		}
		var granted bool
		snap := b.update(ctx, gen, true,
			func(ctx context.Context, op store.Op) (s store.Snapshot, err error) {
				s, granted, err = b.f.store.Claim(ctx, op)
				return s, err
			},
			func(s store.Snapshot, op store.Op) (store.Snapshot, bool) {
				s, granted = s.Claim(op.Settings, op.Gen, op.Now)
				return s, granted
			})
		if granted {
			return Token(word(snap)), nil
		}
		if snap.State == HalfOpen {
			return 0, b.reject(b.trialErr)
		}
		w = b.view.Load()
		if State(w&stateMask) == HalfOpen && uint32(w>>genShift) == uint32(gen) {
			return 0, b.reject(b.trialErr) // the store has no newer answer for us
		}
	}
}

func (b *Breaker) reject(err *OpenError) error {
	if b.f.listeners.active() {
		b.rejected(err)
	}
	return err
}

//go:noinline
func (b *Breaker) rejected(err *OpenError) { // out of line: keeps the rejection's frame small
	b.f.listeners.emit(Event{Kind: EventRejected, Circuit: b.name, Err: err})
}

type outcome uint8

const (
	success outcome = iota
	failure
	ignored
)

func (b *Breaker) classify(ctx context.Context, err error) outcome {
	if err == nil {
		return success
	}
	if err == ErrPanicked {
		return failure
	}
	if ctx != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ignored
	}
	for _, m := range b.cfg.Exclude {
		if m(err) {
			return success
		}
	}
	return failure
}

func (b *Breaker) doneSlow(ctx context.Context, t Token, err error) {
	b.mu.Lock()
	snap := b.snap
	b.mu.Unlock()
	if uint32(snap.Gen) != uint32(uint64(t)>>genShift) {
		return // admitted in an older generation
	}
	admitted := State(uint64(t) & stateMask)
	switch b.classify(ctx, err) {
	case success:
		if admitted == Closed && snap.State == Closed && snap.Failures == 0 {
			return
		}
		b.update(ctx, snap.Gen, false,
			func(ctx context.Context, op store.Op) (store.Snapshot, error) { return b.f.store.Success(ctx, op) },
			func(s store.Snapshot, op store.Op) (store.Snapshot, bool) { return s.Success(op.Settings, op.Gen) })
	case failure:
		if b.f.listeners.active() {
			b.f.listeners.emit(Event{Kind: EventFailure, Circuit: b.name, Failures: snap.Failures + 1, Err: err})
		}
		b.update(ctx, snap.Gen, true,
			func(ctx context.Context, op store.Op) (store.Snapshot, error) { return b.f.store.Failure(ctx, op) },
			func(s store.Snapshot, op store.Op) (store.Snapshot, bool) {
				return s.Failure(op.Settings, op.Gen, op.Now)
			})
	case ignored:
		if admitted == HalfOpen {
			b.update(ctx, snap.Gen, false,
				func(ctx context.Context, op store.Op) (store.Snapshot, error) { return b.f.store.Release(ctx, op) },
				func(s store.Snapshot, op store.Op) (store.Snapshot, bool) { return s.Release(op.Gen) })
		}
	}
}

// genOf returns the full generation a view word or token belongs to, if it
// is the current one.
func (b *Breaker) genOf(w uint64) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snap.Gen, uint32(b.snap.Gen) == uint32(w>>genShift)
}

func (b *Breaker) gen() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snap.Gen
}

// update runs one store operation and adopts its answer. When the store
// fails (or failed less than storeBackoff ago) it applies local to the
// local snapshot instead, so that the breaker keeps working.
func (b *Breaker) update(ctx context.Context, gen uint64, needNow bool,
	remote func(context.Context, store.Op) (store.Snapshot, error),
	local func(store.Snapshot, store.Op) (store.Snapshot, bool),
) store.Snapshot {
	op := store.Op{Circuit: b.name, Settings: settingsOf(b.cfg), Gen: gen}
	b.mu.Lock()
	degraded, retryAt := b.degraded, b.retryAt
	b.mu.Unlock()
	if needNow || degraded {
		op.Now = b.f.clock.Now()
	}
	if !degraded || !op.Now.Before(retryAt) {
		snap, err := remote(ctx, op)
		if err == nil {
			b.mu.Lock()
			// The store's word wins when it is back after a failure, and
			// when it answers with an older generation than we asked about:
			// it lost writes (a restore, a failover), and reordering cannot
			// explain that.
			force := b.degraded || snap.Gen < op.Gen
			b.degraded = false
			b.mu.Unlock()
			return b.adoptSnapshot(snap, force)
		}
		b.storeFailed(err)
	}
	b.mu.Lock()
	next, changed := local(b.snap, op)
	if !changed {
		b.mu.Unlock()
		return next
	}
	prev := b.setLocked(next)
	b.mu.Unlock()
	b.announce(prev, next)
	return next
}

// storeFailed reports a store error once per episode.
func (b *Breaker) storeFailed(err error) {
	b.mu.Lock()
	first := !b.degraded
	b.degraded = true
	b.retryAt = b.f.clock.Now().Add(storeBackoff)
	b.mu.Unlock()
	if first {
		b.f.listeners.emit(Event{Kind: EventStoreError, Circuit: b.name, Err: err})
	}
}

// adopt takes a snapshot the store announced.
func (b *Breaker) adopt(s store.Snapshot) { b.adoptSnapshot(s, false) }

// adoptSnapshot makes s the breaker's view if it is newer than what it has
// (or unconditionally with force), and returns the snapshot in force.
func (b *Breaker) adoptSnapshot(s store.Snapshot, force bool) store.Snapshot {
	b.mu.Lock()
	prev := b.snap
	if !force && s.Seq <= prev.Seq {
		b.mu.Unlock()
		return s
	}
	b.setLocked(s)
	b.mu.Unlock()
	b.announce(prev, s)
	return s
}

// setLocked makes s the breaker's snapshot and view, arming the open
// timer for a newly opened generation, and returns the previous snapshot.
// The error a rejection returns is in place before the view says open.
// b.mu is held.
func (b *Breaker) setLocked(s store.Snapshot) (prev store.Snapshot) {
	prev, b.snap = b.snap, s
	if s.Gen != prev.Gen || s.State != prev.State {
		if b.stopTimer != nil {
			b.stopTimer()
			b.stopTimer = nil
		}
		if s.State == Open {
			b.armLocked(s, 0)
		}
	}
	b.view.Store(word(s))
	return prev
}

// armLocked refreshes RetryAfter and schedules the next tick of an open
// generation: every retryStep, exactly at Until, and not sooner than
// floor. b.mu is held.
func (b *Breaker) armLocked(s store.Snapshot, floor time.Duration) {
	left := s.Until.Sub(b.f.clock.Now())
	if left > 0 {
		// Rounded up to the millisecond: never shorter than the time left.
		retry := (left + time.Millisecond - 1).Truncate(time.Millisecond)
		b.openErr.Store(&OpenError{Circuit: b.name, RetryAfter: retry})
	}
	next := max(min(left, retryStep(b.cfg.TTL)), floor, 0)
	b.stopTimer = b.f.clock.AfterFunc(next, func() { b.tick(s.Gen) })
}

// tick runs on the open timer: it refreshes RetryAfter, or moves the
// circuit to half-open when its time is up.
func (b *Breaker) tick(gen uint64) {
	b.mu.Lock()
	s := b.snap
	if s.Gen != gen || s.State != Open {
		b.mu.Unlock()
		return
	}
	if s.Until.After(b.f.clock.Now()) {
		b.armLocked(s, 0)
		b.mu.Unlock()
		return
	}
	b.stopTimer = nil
	b.mu.Unlock()

	ctx, cancel := storeCtx()
	defer cancel()
	b.update(ctx, gen, true,
		func(ctx context.Context, op store.Op) (store.Snapshot, error) { return b.f.store.Expire(ctx, op) },
		func(s store.Snapshot, op store.Op) (store.Snapshot, bool) { return s.Expire(op.Settings, op.Gen, op.Now) })

	// A store may keep the circuit open longer (another process opened it
	// again at the same generation): look again later rather than never.
	b.mu.Lock()
	if b.snap.Gen == gen && b.snap.State == Open && b.stopTimer == nil {
		b.armLocked(b.snap, retryStep(b.cfg.TTL))
	}
	b.mu.Unlock()
}

// announce tells listeners about a change of state.
func (b *Breaker) announce(prev, s store.Snapshot) {
	if prev.State == s.State && prev.Gen == s.Gen || !b.f.listeners.active() {
		return
	}
	if prev.State != s.State {
		b.f.listeners.emit(Event{Kind: EventStateChanged, Circuit: b.name, From: prev.State, To: s.State})
	}
	if prev.State == HalfOpen && s.State == Closed {
		b.f.listeners.emit(Event{Kind: EventRecovered, Circuit: b.name, From: HalfOpen, To: Closed})
	}
}

func (b *Breaker) settings() store.Settings { return settingsOf(b.cfg) }

func word(s store.Snapshot) uint64 {
	w := uint64(s.State) | uint64(uint32(s.Gen))<<genShift
	if s.State == Closed && s.Failures > 0 {
		w |= pendingBit
	}
	return w
}
