package runtime

import (
	"errors"
	"strconv"
	"time"
)

// ErrOpen is the error a breaker returns, wrapped in an [*OpenError], when it
// rejects a call. Test for it with errors.Is(err, purgatory.ErrOpen).
var ErrOpen = errors.New("purgatory: circuit open")

// ErrPanicked is what generated code reports to [Breaker.Done] when the
// inner call panicked. It counts as a failure, whatever the excludes say.
var ErrPanicked = errors.New("purgatory: call panicked")

// OpenError is the error of a call rejected by an open or half-open
// circuit. errors.Is(err, ErrOpen) holds for it.
//
// RetryAfter is how long the circuit stays open. So that a rejection reads
// no clock and allocates nothing, it is refreshed by the breaker's timer
// rather than computed per call: it is never shorter than the time left and
// longer by at most a tenth of the TTL (at least 1ms, at most 1s), rounded
// up to the millisecond. It is zero
// when the circuit is half-open and all its trial slots are taken. The
// returned value is shared: do not modify it.
type OpenError struct {
	Circuit    string        // the circuit's name
	RetryAfter time.Duration // time until the circuit lets a trial call through

	halfOpen bool
}

// Error reports the circuit and when to retry.
func (e *OpenError) Error() string {
	if e.halfOpen {
		return "purgatory: circuit " + strconv.Quote(e.Circuit) + " is half-open: trial calls in progress"
	}
	return "purgatory: circuit " + strconv.Quote(e.Circuit) + " is open: retry after " + e.RetryAfter.String()
}

// Is reports whether target is [ErrOpen].
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Is returns a matcher for Config.Exclude and [WithExclude] that matches
// errors for which errors.Is(err, target) holds.
func Is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// As returns a matcher for Config.Exclude and [WithExclude] that matches
// errors for which errors.As finds an E in the chain, for example
// purgatory.As[*NotFoundError]().
func As[E error]() func(error) bool {
	return func(err error) bool {
		var target E
		return errors.As(err, &target)
	}
}
