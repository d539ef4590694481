package runtime

import (
	"errors"
	"reflect"
	"strconv"
	"sync"
	"time"
)

// ErrOpen is the error a breaker returns, wrapped in an [*OpenError], when it
// rejects a call. Test for it with errors.Is(err, purgatory.ErrOpen).
var ErrOpen = errors.New("purgatory: circuit open")

// ErrPanicked is what generated code reports to [Breaker.Done] when the
// inner call panicked. It counts as a failure, whatever the excludes say.
var ErrPanicked = errors.New("purgatory: call panicked")

// OpenError is the error of a call rejected by an open, half-open or
// isolated circuit. errors.Is(err, ErrOpen) holds for it.
//
// RetryAfter is how long until the circuit lets a call through, at most.
// So that a rejection reads no clock and allocates nothing, it is not
// computed per call: an open circuit's is refreshed at most once per
// refreshEvery (see factory.go) while it rejects calls (and not at all
// while nobody calls), so it is never shorter than the time left and
// longer by at most refreshEvery, rounded up to the millisecond. While half-open with every trial slot taken, it is
// when the trials' lease runs out (the latest a slot frees up; usually
// sooner). While isolated it is zero: only an operator ends isolation.
// The returned value is shared: do not modify it.
type OpenError struct {
	Circuit    string        // the circuit's name
	RetryAfter time.Duration // time until the circuit lets a call through, at most

	state State
}

// State returns the state of the circuit that rejected the call: Open,
// HalfOpen or Isolated.
func (e *OpenError) State() State {
	if e.state == Closed {
		return Open
	}
	return e.state
}

// Error reports the circuit and when to retry.
func (e *OpenError) Error() string {
	switch e.state {
	case HalfOpen:
		return "purgatory: circuit " + strconv.Quote(e.Circuit) + " is half-open: trial calls in progress, retry within " + e.RetryAfter.String()
	case Isolated:
		return "purgatory: circuit " + strconv.Quote(e.Circuit) + " is isolated: an operator must close it"
	}
	return "purgatory: circuit " + strconv.Quote(e.Circuit) + " is open: retry after " + e.RetryAfter.String()
}

// Is reports whether target is [ErrOpen].
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Is returns a matcher for Config.Exclude and [WithExclude] that matches
// errors for which errors.Is(err, target) holds. For a comparable target it
// returns the same function every time, so that registrations of one
// circuit with the same list are recognised as the same (see
// [Factory.Breaker]).
func Is(target error) func(error) bool {
	if target == nil || !reflect.TypeOf(target).Comparable() {
		return func(err error) bool { return errors.Is(err, target) }
	}
	if m, ok := isMatchers.Load(target); ok {
		return m.(func(error) bool)
	}
	m, _ := isMatchers.LoadOrStore(target, func(err error) bool { return errors.Is(err, target) })
	return m.(func(error) bool)
}

// As returns a matcher for Config.Exclude and [WithExclude] that matches
// errors for which errors.As finds an E in the chain, for example
// purgatory.As[*NotFoundError](). It returns the same function every time
// for the same E.
func As[E error]() func(error) bool {
	key := reflect.TypeFor[E]()
	if m, ok := asMatchers.Load(key); ok {
		return m.(func(error) bool)
	}
	m, _ := asMatchers.LoadOrStore(key, func(err error) bool {
		var target E
		return errors.As(err, &target)
	})
	return m.(func(error) bool)
}

var isMatchers, asMatchers sync.Map
