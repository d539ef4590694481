package runtime

import "time"

// Clock is the time source of a factory. Breakers read it only off the hot
// path: when a circuit opens (a failure that cannot open it reads none,
// unless it goes to a shared store, which needs the time in case it does),
// to time slow calls, to merge a rate circuit's counts, and in the timers
// that move an open circuit on. Tests pass a fake one (see package clocktest) with
// [WithClock] so that nothing sleeps for a TTL.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, unless stop is called
	// first; stop reports whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
