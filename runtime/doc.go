// Package runtime is the small runtime behind the circuit breakers that
// purgatorygen generates. Generated code and documentation import it as
//
//	import purgatory "github.com/purgatory-go/purgatory/runtime"
//
// A [Factory] hands out named [Breaker] values; the first registration of a
// name configures its circuit. A breaker is closed while calls succeed,
// opens after Config.Threshold consecutive failures, rejects calls with an
// [*OpenError] for Config.TTL, then lets Config.Trials trial calls through
// while half-open: it closes when they succeed and opens again on a failure.
//
// Generated wrappers call [Breaker.Allow] and [Breaker.Done] directly; code
// that is not generated uses [Breaker.Do]. On the default in-memory store a
// closed success and an open rejection read one atomic word, take no lock,
// read no clock and allocate nothing: timers, not the calls, move a circuit
// out of the open state.
//
// State is kept in a [store.Store]: the in-memory store by default, or a
// shared one such as the Redis store, so that every process sees one state
// per circuit. Listeners ([Listener]) receive typed [Event] values for every
// change.
package runtime
