package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: a call's way through the breaker beyond the inlined fast
// paths of Allow and Done: admission with flags, rejection, a result's
// classification and counting.

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
	w := b.view.Load()
	switch word(w).state() {
	case Open:
		e := b.openErr.Load()
		if w&staleBit != 0 {
			e = b.rare.refreshOpenErr() // see rare: made before the view left closed
		}
		return 0, b.reject(w, e)
	case HalfOpen:
		if w&fullBit != 0 {
			return 0, b.reject(w, b.trialErr.Load())
		}
		return b.rare.allowTrial(ctx) // see rare
	case Isolated:
		return 0, b.reject(w, b.openErr.Load())
	}
	return b.allowClosed(w), nil
}

// allowClosed admits a call to a closed circuit whose view w has a flag:
// its token is marked for Done's slow path, and timed (its start in it)
// for a slow-call circuit. A trial's token: see takeLeaseLocked.
func (b *Breaker) allowClosed(w uint64) Token {
	t := w&^flagMask | uint64(Closed) | tokenBit
	if w&slowBit == 0 {
		return Token(t)
	}
	return Token(t&(flagMask|timedGenMask<<genShift) | timedBit | b.micros()<<timedShift)
}

// micros reads the factory clock in microseconds since the factory's
// epoch, modulo 2^40 (slow calls).
func (c *conf) micros() uint64 {
	return uint64(c.f.clock.Now().Sub(c.f.epoch)/time.Microsecond) & timedMask
}

// slow reports whether a call that took elapsed microseconds (a
// difference of micros, modulo 2^40) is slower than Config.SlowCall.
func (c *conf) slow(elapsed uint64) bool {
	return elapsed&timedMask > uint64(c.cfg.SlowCall/time.Microsecond)
}

// rejection returns the error a call rejected under view w gets: the
// state's, or one made now if the view moved on to a state that has none.
func (b *Breaker) rejection(w uint64) *OpenError {
	var e *OpenError
	switch word(w).state() {
	case Open, Isolated:
		e = b.openErr.Load()
	case HalfOpen:
		e = b.trialErr.Load()
	}
	if e == nil {
		e = &OpenError{Circuit: b.name, state: HalfOpen}
	}
	return e
}

// reject counts and reports a rejection.
func (b *Breaker) reject(w uint64, e *OpenError) error {
	if w&countBit != 0 {
		b.stripes.add(offRejected)
	}
	if b.f.listeners.active() {
		b.rejected(e)
	}
	return e
}

//go:noinline
func (b *Breaker) rejected(e *OpenError) { // out of line: keeps the rejection's frame small
	b.f.listeners.emit(Event{Kind: EventRejected, Circuit: b.name, Breaker: b, Seq: b.events.last.Load(), Err: e})
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
func (c *conf) classify(ctx context.Context, err error) outcome {
	if err == nil {
		return success
	}
	if err == ErrPanicked {
		return failure
	}
	if errors.Is(err, context.Canceled) && (ctx == nil || ctx.Err() != nil) {
		return ignored
	}
	for _, m := range c.ignore {
		if matches(m, err) {
			return ignored
		}
	}
	for _, m := range c.exclude {
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
	if w := b.view.Load(); err == nil && t&(timedBit|stateMask) == 0 && w&^flagMask == uint64(t)&^flagMask && w&(stateMask|pendingBit) == 0 {
		// A success of a closed call with nothing pending: count it.
		if w&(countBit|rateBit) == 0 {
			return
		}
		if w&countBit != 0 {
			b.stripes.add(offSuccess)
		}
		if w&rateBit != 0 {
			b.rate.record(word(w).gen(), false)
		}
		return
	}
	if word(t).state() == HalfOpen {
		b.trialDone(ctx, t, err)
		return
	}
	o := b.classify(ctx, err)
	if t&timedBit != 0 && o != ignored && b.slow(b.micros()-uint64(t)>>timedShift) {
		o, err = failure, &SlowCallError{Circuit: b.name, Err: err}
	}
	w := b.view.Load()
	b.count(w, o)
	if !sameGen(w, t) || word(w).state() != Closed {
		return // admitted in an older generation
	}
	if w&rateBit != 0 && o != ignored {
		b.rate.record(word(w).gen(), o == failure)
	}
	switch o {
	case success, excluded:
		if w&pendingBit != 0 {
			b.push(word(w).gen(), store.Success, false)
		}
	case failure:
		if b.f.listeners.active() {
			b.failed(err)
		}
		if b.set.Threshold > 0 {
			b.push(word(w).gen(), store.Failure, false)
		}
	}
}

// count counts a call's outcome.
func (b *Breaker) count(w uint64, o outcome) {
	switch o {
	case success:
		if w&countBit != 0 {
			b.stripes.add(offSuccess)
		}
	case failure:
		b.failures.Add(1)
	case excluded:
		b.excludedN.Add(1)
	case ignored:
		b.ignoredN.Add(1)
	}
}

//go:noinline
func (b *Breaker) failed(err error) {
	b.mu.Lock()
	n := b.snap.Failures + 1
	b.mu.Unlock()
	seq := b.events.last.Load()
	b.f.listeners.emit(Event{Kind: EventFailure, Circuit: b.name, Breaker: b, Seq: seq, Failures: n, Err: err})
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
