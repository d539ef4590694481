// Package store defines where circuit breakers keep the state they share: the
// Store interface, the in-memory store used by default, and the pure
// transition functions every store applies.
//
// A breaker never asks its store on the hot path. It keeps a local view of
// the circuit and calls the store only when something must change: a
// failure, a success that resets pending failures, a half-open trial claim,
// the end of an open period or of a trial lease, a manual open, close or
// isolation, a flush of a rate circuit's counts. Every answer is a
// [Snapshot] of the circuit after the operation.
//
// # Rules every store keeps
//
//   - Atomic operations. Each operation is applied as one step, with the
//     rules of [Snapshot.Apply] (the reference semantics: one table of
//     operations, [Kind], each a pure transition of [Snapshot]; package
//     storetest checks a store against them, [Do] dispatches one to a
//     Store).
//   - Generations. Gen counts state changes; a result is applied only to the
//     generation in which its call was admitted. Seq counts every change of
//     the record and orders the snapshots of one record. A store never
//     makes Seq go backwards for a record it still has; a store that lost a
//     record (a restart, a restore from an older snapshot) gives the record
//     a Seq newer than any it handed out before, as the Redis store does
//     with its server clock.
//   - Leases. The trial slots of a half-open generation are leased: the
//     first claim with no slot taken sets Until to now + TTL. A half-open
//     circuit whose lease has run out with slots still taken is treated as
//     a failed trial: the next Claim or Expire re-opens it, one backoff
//     level up. So a trial that never reports — a hung call, a lost
//     goroutine, a killed process — cannot keep a circuit from calls for
//     longer than the TTL. Until is written with the claimer's clock and
//     read with others': a Claim or Expire ends a lease only once its
//     Op.Now is past Until + Op.Skew, the clock skew the caller tolerates
//     (see [Snapshot.Expire]), so that a lease is not cut short by a
//     claimer whose clock is behind by up to that much.
//   - Isolation. An [Isolated] circuit rejects calls until it is forced
//     closed (or open); only Force and Reconcile move it.
//   - Watch delivers only snapshots the store vouches for. A store that
//     learns of changes through a channel others can write to (pub/sub)
//     confirms a change of state or generation by reading the record before
//     it delivers it.
package store

import (
	"context"
	"fmt"
	"time"
)

// State is the state of a circuit.
type State uint8

// The states of a circuit.
const (
	// Closed lets calls through and counts failures.
	Closed State = iota
	// Open rejects calls until its Until has passed.
	Open
	// HalfOpen lets a limited number of trial calls through.
	HalfOpen
	// Isolated rejects calls until an operator closes it.
	Isolated
)

// String returns "closed", "open", "half-open" or "isolated".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	case Isolated:
		return "isolated"
	}
	return "invalid"
}

// Settings are the parts of a circuit's configuration that a store keeps
// and shares. The first registration of a circuit name decides them.
type Settings struct {
	// Threshold is the number of consecutive failures that open the
	// circuit; 0 means only the failure rate opens it.
	Threshold int
	TTL       time.Duration // how long the circuit stays open, > 0; also the trial lease
	Trials    int           // calls let through at once while half-open, >= 1
	// MaxTTL, when above TTL, makes each failed half-open period double
	// the next open period, up to MaxTTL.
	MaxTTL time.Duration
	// FailureRate in (0, 1] opens the circuit when the rolling Window
	// holds at least MinCalls calls and failed/calls >= FailureRate; 0
	// disables it.
	FailureRate float64
	Window      time.Duration // the rolling window's length, > 0 with FailureRate
	MinCalls    int           // calls needed in the window, >= 1 with FailureRate
}

// Bounds of the settings every store accepts (see [Settings.Check]).
const (
	MaxCount    = 1_000_000          // threshold, trials
	MaxMinCalls = 1_000_000_000      // min calls
	MaxPeriod   = 7 * 24 * time.Hour // ttl, max ttl, window
	MinWindow   = time.Millisecond   // window, with a failure rate
)

// Check reports settings out of the bounds every store accepts.
func (set Settings) Check() error {
	bad := ""
	switch {
	case set.Threshold < 0 || set.Threshold > MaxCount:
		bad = fmt.Sprintf("threshold %d not in [0, %d]", set.Threshold, MaxCount)
	case set.TTL <= 0 || set.TTL > MaxPeriod:
		bad = fmt.Sprintf("ttl %s not in (0, %s]", set.TTL, MaxPeriod)
	case set.Trials < 1 || set.Trials > MaxCount:
		bad = fmt.Sprintf("trials %d not in [1, %d]", set.Trials, MaxCount)
	case set.MaxTTL < 0 || set.MaxTTL > MaxPeriod:
		bad = fmt.Sprintf("maxttl %s not in [0, %s]", set.MaxTTL, MaxPeriod)
	case !(set.FailureRate >= 0 && set.FailureRate <= 1):
		bad = fmt.Sprintf("failure rate %v not in [0, 1]", set.FailureRate)
	case set.Window < 0 || set.Window > MaxPeriod || set.FailureRate > 0 && set.Window < MinWindow:
		bad = fmt.Sprintf("window %s not in [%s, %s]", set.Window, MinWindow, MaxPeriod)
	case set.MinCalls < 0 || set.MinCalls > MaxMinCalls:
		bad = fmt.Sprintf("min calls %d not in [0, %d]", set.MinCalls, MaxMinCalls)
	case set.Threshold == 0 && set.FailureRate == 0:
		bad = "neither a threshold nor a failure rate"
	}
	if bad != "" {
		return fmt.Errorf("bad settings: %s", bad)
	}
	return nil
}

// Applied is implemented by errors a store returns together with a valid
// snapshot: the operation was applied, and the error tells of something
// else — a corrupt record the store replaced, a record whose settings
// differ from the caller's. A breaker adopts the snapshot and reports the
// error to its listeners.
type Applied interface {
	error
	Applied() bool
}

// Conflict is implemented by Applied errors that report a record whose
// settings differ from the caller's; the record's applied.
type Conflict interface {
	Applied
	Settings() (inForce, wanted Settings)
}

// OpenFor returns how long the circuit stays open when it opens at backoff
// level level: TTL, doubled per level up to MaxTTL when MaxTTL is above TTL.
func (set Settings) OpenFor(level int) time.Duration {
	d := set.TTL
	if set.MaxTTL <= d {
		return d
	}
	for range level {
		if d >= set.MaxTTL/2 {
			return set.MaxTTL
		}
		d *= 2
	}
	return d
}

// Store keeps circuit state. Every method except Watch may be called with a
// context that limits how long it may take; a store that cannot answer in
// time returns an error and the breaker carries on with its local state.
type Store interface {
	// Register creates the circuit with s unless it exists, and returns the
	// settings in force (those of the first registration) and its state.
	Register(ctx context.Context, name string, s Settings) (Settings, Snapshot, error)
	// Failure records a failed call admitted in generation op.Gen (see
	// [Snapshot.Failure]).
	Failure(ctx context.Context, op Op) (Snapshot, error)
	// Success records a successful call admitted in generation op.Gen (see
	// [Snapshot.Success]).
	Success(ctx context.Context, op Op) (Snapshot, error)
	// Claim takes one half-open trial slot in generation op.Gen and
	// reports whether it was granted (see [Snapshot.Claim]).
	Claim(ctx context.Context, op Op) (Snapshot, bool, error)
	// Release gives back a trial slot whose call ended with neither
	// success nor failure (the caller gave up).
	Release(ctx context.Context, op Op) (Snapshot, error)
	// Expire ends the open period or the trial lease of generation op.Gen
	// once op.Now has reached its Until (a trial lease: its Until +
	// op.Skew; see [Snapshot.Expire]).
	Expire(ctx context.Context, op Op) (Snapshot, error)
	// Force moves the circuit to Open (for the open period from op.Now),
	// Closed or Isolated, whatever its state and generation.
	Force(ctx context.Context, op Op, to State) (Snapshot, error)
	// Record merges counts of calls admitted in the closed generation
	// op.Gen into the circuit's rolling window and opens the circuit when
	// its failure rate is reached (see [Snapshot.Record]).
	Record(ctx context.Context, op Op, calls, failed int) (Snapshot, error)
	// Reconcile pushes a state the caller reached while it could not reach
	// the store: when the record's Seq is still base, the record takes
	// want's state, Until and Level in a new generation; otherwise the
	// record moved on meanwhile and stays as it is (see
	// [Snapshot.Reconcile]).
	Reconcile(ctx context.Context, op Op, base uint64, want Snapshot) (Snapshot, error)
	// Watch calls fn with every snapshot the store learns of for the named
	// circuit, including changes made by other users of the store, until
	// stop is called. fn must not block; snapshots may arrive out of order
	// (order them by Seq) and more than once.
	Watch(name string, fn func(Snapshot)) (stop func())
}

// FailureBatcher is implemented by stores that can record several failures
// of one generation in one operation (see [Snapshot.FailureN]). A breaker
// that reports failures off its callers' path coalesces those that
// accumulated while its last store call ran, and sends them with one
// Failures call when the store has it, else one Failure call each.
type FailureBatcher interface {
	Failures(ctx context.Context, op Op, n int) (Snapshot, error)
}

// Immediate is implemented by stores whose operations never wait: no I/O,
// no lock held for longer than a computation, like [Memory] (and stores
// that embed it). A breaker reports results to such a store on its
// caller's path, at once; to any other store it reports them off the
// caller's path, through one pusher per circuit, so that a slow or frozen
// store never holds a finished call.
type Immediate interface {
	Immediate()
}
