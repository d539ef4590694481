package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

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
	if err != nil || b.view.Load() != uint64(t)&^0xff {
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

// Status returns the circuit as this process sees it.
func (b *Breaker) Status() Status {
	return b.status()
}

// allowSlow handles every circuit that is not closed without flags: the
// common rejections (open, and half-open with every slot taken) in a small
// frame, everything else out of line.
func (b *Breaker) allowSlow(ctx context.Context) (Token, error) {
	var e *OpenError
	switch w := b.view.Load(); {
	case w&(stateMask|staleBit|countBit) == uint64(Open):
		e = b.openErr.Load()
	case w&(stateMask|fullBit|countBit) == uint64(HalfOpen)|fullBit:
		e = b.trialErr.Load()
	default:
		return b.allowOther(ctx)
	}
	if b.f.listeners.active() {
		b.rejected(e)
	}
	return 0, e
}

// allowOther handles the rest: a stale or counted rejection, an isolated
// circuit, a trial claim, a closed circuit with flags.
//
//go:noinline
func (b *Breaker) allowOther(ctx context.Context) (Token, error) {
	c := b
	w := c.view.Load()
	switch State(w & stateMask) {
	case Open:
		e := c.openErr.Load()
		if w&staleBit != 0 {
			e = c.refreshOpenErr()
		}
		return 0, c.reject(w, e)
	case HalfOpen:
		if w&fullBit != 0 {
			return 0, c.reject(w, c.trialErr.Load())
		}
		return c.allowTrial(ctx)
	case Isolated:
		return 0, c.reject(w, c.isoErr)
	}
	return c.allowClosed(w), nil
}

type outcome uint8

const (
	success outcome = iota
	failure
	excluded
	ignored
)

// classify sorts a call's result. A matcher that panics does not hide the
// failure: its panic is dropped and the error counts as a failure.
func (b *Breaker) classify(ctx context.Context, err error) outcome {
	if err == nil {
		return success
	}
	if err == ErrPanicked {
		return failure
	}
	if errors.Is(err, context.Canceled) && (ctx == nil || ctx.Err() != nil) {
		return ignored
	}
	for _, m := range b.ignore {
		if matches(m, err) {
			return ignored
		}
	}
	for _, m := range b.exclude {
		if matches(m, err) {
			return excluded
		}
	}
	return failure
}

func matches(m func(error) bool, err error) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return m(err)
}

func (b *Breaker) doneSlow(ctx context.Context, t Token, err error) {
	c := b
	if w := c.view.Load(); err == nil && t&(timedBit|stateMask) == 0 && w&^0xff == uint64(t)&^0xff && w&(stateMask|pendingBit) == 0 {
		// A success of a closed call with nothing pending: count it.
		if w&(countBit|rateBit) == 0 {
			return
		}
		if w&countBit != 0 {
			c.stripes.add(offSuccess)
		}
		if w&rateBit != 0 {
			c.recordCall(w>>genShift, false)
		}
		return
	}
	o := b.classify(ctx, err)
	if t&timedBit != 0 && o != ignored && (c.micros()-uint64(t)>>timedShift)&timedMask > uint64(c.cfg.SlowCall/time.Microsecond) {
		o, err = failure, &SlowCallError{Circuit: c.name, Err: err}
	}
	if State(t&stateMask) == HalfOpen {
		c.trialDone(t, o, err)
		return
	}
	w := c.view.Load()
	c.count(w, o)
	if !sameGen(w, t) || State(w&stateMask) != Closed {
		return // admitted in an older generation
	}
	if w&rateBit != 0 && o != ignored {
		c.recordCall(w>>genShift, o == failure)
	}
	switch o {
	case success, excluded:
		if w&pendingBit != 0 {
			c.push(w>>genShift, opSuccess, false)
		}
	case failure:
		if c.f.listeners.active() {
			c.failed(err)
		}
		if c.set.Threshold > 0 {
			c.push(w>>genShift, opFailure, false)
		}
	}
}

// sameGen reports whether view word w is of the generation token t was
// admitted in: all 56 bits, or the 16 a timed token keeps.
func sameGen(w uint64, t Token) bool {
	if t&timedBit != 0 {
		return w>>genShift&timedGenMask == uint64(t)>>genShift&timedGenMask
	}
	return w>>genShift == uint64(t)>>genShift
}

// SlowCallError is what a failure event carries for a call that took
// longer than Config.SlowCall. The call's own result is returned to its
// caller unchanged.
type SlowCallError struct {
	Circuit string
	Err     error // the call's own error, nil if it succeeded
}

// Error says the call was slow.
func (e *SlowCallError) Error() string {
	if e.Err == nil {
		return "purgatory: slow call on circuit " + fmt.Sprintf("%q", e.Circuit)
	}
	return fmt.Sprintf("purgatory: slow call on circuit %q: %v", e.Circuit, e.Err)
}

// Unwrap returns the call's own error.
func (e *SlowCallError) Unwrap() error { return e.Err }

// The view word: everything the hot path needs in one atomic uint64.
//
//	bits 0-1   state (Closed, Open, HalfOpen, Isolated)
//	bit  2     closed: failures pending, a success must reset them;
//	           open: RetryAfter is stale, the next rejection refreshes it
//	bit  3     the factory counts calls (see Factory.CountCalls)
//	bit  4     closed: a rate circuit, calls are counted into its window
//	bit  5     closed: slow calls are timed, Allow reads the clock
//	bit  6     half-open: every trial slot is taken, reject at once
//	bit  7     never in the view: see below
//	bits 8-63  the generation (stores keep generations below 2^56)
//
// A token is the view word a closed, untimed call was admitted under; Done
// finishes it on its fast path when the view is that generation with no
// flag. A trial's token has the half-open state and keeps its slot in bits
// 2-5; a timed token (bit 6) keeps only the low 16 bits of the generation
// in bits 8-23 and its start, in microseconds modulo 2^40, in bits 24-63:
// a slow-call circuit compares 16 bits of generation, and measures calls
// up to 2^40 µs (12.7 days) long, beyond MaxSlowCall (7 days) with room
// to spare. Both are marked with bit 7 (tokenBit).
const (
	stateMask    = 0b11
	pendingBit   = 1 << 2
	staleBit     = 1 << 2 // in an open view
	countBit     = 1 << 3
	rateBit      = 1 << 4
	slowBit      = 1 << 5
	fullBit      = 1 << 6
	tokenBit     = 1 << 7
	timedBit     = 1 << 6 // in a marked token
	slotShift    = 2
	maxSlots     = 16
	genShift     = 8
	genMask      = 1<<(64-genShift) - 1
	timedGenMask = 1<<16 - 1
	timedShift   = 24
	timedMask    = 1<<40 - 1

	// MaxSlowCall is the longest Config.SlowCall: calls are timed up to
	// 2^40 µs (12.7 days).
	MaxSlowCall = store.MaxPeriod
)

// storeOp names the store operations a breaker makes.
type storeOp uint8

const (
	opFailure storeOp = iota
	opSuccess
	opClaim
	opRelease
	opExpire
	opForceOpen
	opForceClosed
	opForceIsolated
	opRecord
)

func (o storeOp) needsClock() bool { return o != opSuccess && o != opRelease }

// storeTimeout bounds store calls made on behalf of finished calls and of
// timers: the store's own timeout applies too.
const storeTimeout = time.Second
