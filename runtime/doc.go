// Package runtime is the small runtime behind the circuit breakers that
// purgatorygen generates. Generated code and documentation import it as
//
//	import purgatory "github.com/purgatory-go/purgatory/runtime"
//
// A [Factory] hands out named [Breaker] values; the first registration of a
// name configures its circuit. A breaker is closed while calls succeed,
// opens after Config.Threshold consecutive failures (or, with
// Config.FailureRate, when the failure rate over a rolling window is
// reached), rejects calls with an [*OpenError] for Config.TTL (doubling per
// failed trial up to Config.MaxTTL), then lets Config.Trials trial calls
// through while half-open: it closes when they succeed and opens again on
// a failure. [Breaker.Isolate] holds it open until [Breaker.Close].
//
// Generated wrappers call [Breaker.Allow] and [Breaker.Done] directly; code
// that is not generated uses [Breaker.Do]. On the default in-memory store a
// closed success, an open rejection and a half-open rejection once every
// trial slot is taken read one atomic word, take no lock, read no clock
// and allocate nothing: timers, not the calls, move a circuit on.
//
// State is kept in a [store.Store]: the in-memory store by default, or a
// shared one such as the Redis store, so that every process sees one state
// per circuit. Listeners ([Listener]) receive typed [Event] values for every
// change.
//
// # Lifecycle rules
//
// Results. Done takes a call's result once. A result of a call admitted in
// an earlier generation (the circuit changed state since) is ignored, and
// so is a second report of a half-open trial (each trial's token names its
// own lease: it gives back its slot at most once, and never another's).
// The store work a result causes is bounded by the store's timeout, not by
// the call's context, which may be done already (a timeout is a failure
// the store must see).
// With a store that may block (any but a [store.Immediate] one such as the
// memory store), Done does not wait for it at all: one pusher goroutine
// per circuit, started on demand, sends results to the store in order,
// each exactly once, and coalesces those that accumulated while its last
// call ran (n failures of a generation in one [store.FailureBatcher]
// call). The local view follows the store's answers, so a trip caused by
// this process's failures shows one round trip later. Half-open trial
// claims still ask the store on the caller's path, bounded by its context.
//
// Leases. A half-open trial slot is a lease of one TTL from the first
// claim. A trial that never reports — a hung call, a lost goroutine, a
// killed process — holds its slot until the lease runs out; then the
// circuit re-opens as if the trial had failed (one backoff level up), in
// this process by its half-open timer and in the store by its own rules,
// so a dead process's claim expires too. No circuit rejects every call for
// longer than its longest open period plus one lease (plus the clock
// allowance below, with a shared store). A trial that reports
// gives its slot back at once: only a trial that never reports may cost a
// re-opening. A half-open circuit that nobody calls stays half-open and
// waits for its next trial, however long (as gobreaker and resilience4j
// do); it closes after Config.Trials successful trials, however far apart.
//
// Clocks. Each process reads its own clock: a lease's end (Until) is the
// claimer's clock plus the TTL, an open period's end the opener's clock
// plus its length. Processes sharing a store must keep their clocks within
// a bound G of each other, set with [WithClockSkew] (DefaultClockSkew, 1s):
// a process ends another's lease, by its timer or by a claim, only once
// its own clock is past Until + G. So clocks that disagree by up to G never
// cut a lease short; a trial that never reports holds its slot for at most
// TTL + 2G (TTL + G on the claimer's own clock); and an open period may
// end up to G early or late in a process whose clock differs from the
// opener's. Beyond G, the excess e cuts leases claimed by the slower clock
// short by e: with e >= TTL a faster process ends them at birth, and a
// circuit whose trials come from that process flaps between open and
// half-open while it is the one claiming. A factory without a store has
// one clock and no allowance.
//
// Reconciliation. When the store fails, the breaker carries on with its
// local state, reports one [EventStoreError] per episode, and leaves the
// store alone for a second. Transitions it makes meanwhile (a trip, an
// operator's Close or Isolate, the end of an open period) are not silently
// reverted when the store is back: the first store call after the outage
// pushes the local state with a compare-and-set ([store.Store.Reconcile]),
// which takes effect when nobody changed the record's state meanwhile: if
// it moved on only by counters of the generation this process left (a
// write the runtime gave up on and the store applied late, or other
// processes' counts), the push is repeated on top of it; if its state or
// generation changed, the record wins. A trial granted on local state
// (no store, a detached circuit, or a store that failed) holds no slot in
// the store, and its generation may be one this process numbered itself:
// its result is applied to the local state only, never sent to the store,
// and once a diverged state meets the store (pushed, or the record won)
// such trials are forgotten and their results ignored, even if the record's
// generation has the same number. Until the push, snapshots of the
// generation this process left do not revert its transitions: a write the
// runtime gave up on never overrides what happened since. A timer retries
// the push while nothing calls. Snapshots from the store
// are adopted by the store's ordering only: local transitions never
// advance it, so a process that saw a fault is not left out of step. The
// store's answer to an operation is the record after it: an answer whose
// Seq is lower than the newest the process had seen when it sent the
// operation shows a record that stepped back (a forged message got
// through, or the store lost writes), and is installed as it is; a
// snapshot of a newer generation with a lower Seq (a record replaced) is
// ordered from its own Seq on.
//
// Events. The created, state-changed, recovered, config-conflict and
// store-error events of a circuit reach each listener in order, one at a
// time, outside every lock, so listeners may call back into the factory;
// every event carries a per-circuit Seq.
//
// Rate windows. A rate circuit's window belongs to one closed generation:
// calls admitted in another, merged or not, never count in it, so Close,
// a trial that closes the circuit or a trip that recovers starts it
// afresh. Each process counts its calls exactly (a call and its failure
// in one atomic add) and merges them into the store's window once per
// bucket (Window/10), and at once when a failure finds that its counts,
// with the window as last merged in this bucket, reach MinCalls and
// FailureRate, or that the window was merged in an earlier bucket (some of
// it may have aged out). The store opens the circuit on the fleet's window
// as merged: in one process the circuit opens on the failing call; across
// processes the window lacks at most the last bucket of each other
// process's calls, so a burst of failures in one process can open it
// before other processes' successes of the same bucket are merged.
//
// Close and Remove. [Factory.Close] stops the factory's store watches and
// reconciliation retries; its breakers, and those it makes after Close,
// keep working on local state only, their open periods and RetryAfter
// included. [Factory.Remove] drops one circuit (per-key circuits). Store
// watches hold breakers weakly: a factory dropped without Close is
// collected, and its watches stop.
package runtime
