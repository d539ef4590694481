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
//     rules of the functions on [Snapshot] (the reference semantics; package
//     storetest checks a store against them).
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
//     longer than the TTL.
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

// Buckets is the number of buckets a rolling window is cut into: counts
// age out of the window one bucket (Window/Buckets) at a time.
const Buckets = 10

// Snapshot is the shared state of one circuit at one moment.
type Snapshot struct {
	State State
	// Gen counts state changes. A result is applied only to the generation
	// in which its call was admitted; results from older generations are
	// ignored.
	Gen uint64
	// Seq counts every change of the record, state change or not, so that
	// readers can order snapshots that arrive out of order.
	Seq uint64
	// Failures is the number of consecutive failures while closed.
	Failures int
	// Claimed is the number of trial calls in flight while half-open: a
	// trial that reports gives its slot back.
	Claimed int
	// Succeeded is the number of trial calls that succeeded while
	// half-open. In a closed generation that its trials started, it keeps
	// their number, so that every reader can tell a recovery from a close
	// by hand (0).
	Succeeded int
	// Until is, while open, when the circuit may become half-open; while
	// half-open, when the trial lease ends and the circuit re-opens unless
	// its trials have closed it. It is zero in the other states.
	Until time.Time
	// Level counts the open periods in a row that ended in a failed trial
	// (see Settings.MaxTTL). It goes back to 0 when the circuit closes.
	Level int
	// Calls and Failed are a rate circuit's window totals after the last
	// Record (see [Window]).
	Calls, Failed int
}

// Window is the rolling window of a rate circuit, kept by the store beside
// the circuit's snapshot. It belongs to one closed generation: counts of
// another generation start it afresh.
type Window struct {
	Gen    uint64         // the closed generation the counts belong to
	Start  int64          // index of the newest bucket (time / bucket width)
	Calls  [Buckets]int64 // Calls[i] is the bucket Start-i
	Failed [Buckets]int64
}

// Op describes one store operation: which circuit, its settings (so that a
// store that lost the record can recreate it), the generation the caller's
// result belongs to and the caller's clock reading.
type Op struct {
	Circuit  string
	Settings Settings
	Gen      uint64
	Now      time.Time
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
	// once op.Now has reached its Until (see [Snapshot.Expire]).
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

// New returns the snapshot of a circuit that was just registered.
func New() Snapshot { return Snapshot{State: Closed, Gen: 1, Seq: 1} }

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

// Failure returns s after a failure of a call admitted in generation gen,
// and whether it changed: while closed it counts a consecutive failure and
// opens the circuit at the threshold (if there is one); while half-open it
// re-opens it, one backoff level up.
func (s Snapshot) Failure(set Settings, gen uint64, now time.Time) (Snapshot, bool) {
	if gen != s.Gen {
		return s, false
	}
	switch s.State {
	case Closed:
		if set.Threshold <= 0 {
			return s, false
		}
		s.Failures++
		if s.Failures >= set.Threshold {
			return s.open(set, now, 0), true
		}
		s.Seq++
		return s, true
	case HalfOpen:
		return s.open(set, now, s.Level+1), true
	}
	return s, false
}

// FailureN returns s after n failures of calls admitted in generation gen,
// in one step, and whether it changed: the same as n calls of
// [Snapshot.Failure] in a row (those after the one that opens the circuit
// belong to a generation that ended, and are ignored).
func (s Snapshot) FailureN(set Settings, gen uint64, n int, now time.Time) (Snapshot, bool) {
	if n <= 0 || gen != s.Gen {
		return s, false
	}
	if s.State != Closed || set.Threshold <= 0 || n == 1 {
		return s.Failure(set, gen, now)
	}
	k := max(set.Threshold-s.Failures, 1) // the failure that opens it
	if n < k {
		s.Failures += n
		s.Seq += uint64(n)
		return s, true
	}
	s.Seq += uint64(k - 1)
	return s.open(set, now, 0), true
}

// Success returns s after a success of a call admitted in generation gen,
// and whether it changed: it resets pending failures while closed, and
// counts a trial success while half-open, closing the circuit after
// Settings.Trials of them. A successful trial gives its slot back: only a
// trial that never reports may cost a re-opening (see Expire). A
// half-open circuit with no slot taken waits for calls, however long.
func (s Snapshot) Success(set Settings, gen uint64) (Snapshot, bool) {
	if gen != s.Gen {
		return s, false
	}
	switch s.State {
	case Closed:
		if s.Failures == 0 {
			return s, false
		}
		s.Failures = 0
		s.Seq++
		return s, true
	case HalfOpen:
		s.Succeeded++
		if s.Succeeded >= set.Trials {
			n := s.to(Closed)
			n.Succeeded = s.Succeeded // closed by its trials: a recovery
			return n, true
		}
		if s.Claimed > 0 {
			s.Claimed-- // a trial that reported holds no slot: its lease is over
		}
		s.Seq++
		return s, true
	}
	return s, false
}

// Claim returns s after an attempt to claim a trial slot in generation gen,
// and whether the slot was granted. An open circuit whose Until is not
// after now becomes half-open first, and the claim applies to that new
// generation. The first claim of a half-open circuit with no slot taken
// starts the trial lease (Until = now + TTL); a claim after the lease ran
// out with slots still taken re-opens the circuit instead (see
// [Snapshot.Expire]).
func (s Snapshot) Claim(set Settings, gen uint64, now time.Time) (Snapshot, bool) {
	if s.State == Open && s.Gen == gen && !now.Before(s.Until) {
		s = s.halfOpen(set, now)
		gen = s.Gen
	}
	if s.State != HalfOpen || s.Gen != gen {
		return s, false
	}
	if s.Claimed > 0 && !now.Before(s.Until) {
		return s.open(set, now, s.Level+1), false
	}
	if s.Claimed >= set.Trials {
		return s, false
	}
	if s.Claimed == 0 {
		s.Until = now.Add(set.TTL) // the lease starts with its first claim
	}
	s.Claimed++
	s.Seq++
	return s, true
}

// Release returns s after a trial slot of generation gen was given back
// unused, and whether it changed.
func (s Snapshot) Release(gen uint64) (Snapshot, bool) {
	if s.State != HalfOpen || s.Gen != gen || s.Claimed == 0 {
		return s, false
	}
	s.Claimed--
	s.Seq++
	return s, true
}

// Expire returns s after the end of generation gen's open period or trial
// lease, and whether it changed: an open circuit whose Until is not after
// now becomes half-open (Until = now + TTL); a half-open one whose lease
// has run out with trial slots still taken re-opens, one backoff level up,
// as if a trial had failed. A half-open circuit with no slot taken stays
// as it is: it costs nothing while nobody calls.
func (s Snapshot) Expire(set Settings, gen uint64, now time.Time) (Snapshot, bool) {
	if s.Gen != gen || now.Before(s.Until) {
		return s, false
	}
	switch s.State {
	case Open:
		return s.halfOpen(set, now), true
	case HalfOpen:
		if s.Claimed == 0 {
			return s, false // nobody holds a slot: nothing to take back
		}
		return s.open(set, now, s.Level+1), true
	}
	return s, false
}

// Force returns s moved to the state to: Open (for the open period of its
// backoff level, from now), Closed, or Isolated. Forcing a circuit into the
// state it is in starts a new generation all the same, so that calls
// admitted before are ignored.
func (s Snapshot) Force(set Settings, to State, now time.Time) Snapshot {
	switch to {
	case Open:
		return s.open(set, now, s.Level)
	case HalfOpen:
		return s.halfOpen(set, now)
	}
	return s.to(to)
}

// Record returns s after counts of the closed generation gen were merged
// into the rolling window w, the window after it, and whether s changed. The
// circuit opens when it is closed in generation gen, the window holds at
// least MinCalls calls and failed/calls >= FailureRate.
func (s Snapshot) Record(w Window, set Settings, gen uint64, calls, failed int, now time.Time) (Snapshot, Window, bool) {
	if s.State != Closed || s.Gen != gen || set.FailureRate <= 0 || set.Window <= 0 || calls <= 0 {
		return s, w, false
	}
	w = w.Add(set, gen, now, calls, failed)
	s.Calls, s.Failed = w.Totals()
	if s.Calls >= max(set.MinCalls, 1) && float64(s.Failed) >= set.FailureRate*float64(s.Calls) {
		return s.open(set, now, 0), w, true
	}
	s.Seq++
	return s, w, true
}

// Add returns w with calls and failed counted at now for generation gen,
// after dropping the buckets that fell out of the window.
func (w Window) Add(set Settings, gen uint64, now time.Time, calls, failed int) Window {
	width := max(set.Window/Buckets, 1)
	at := now.UnixNano() / int64(width)
	switch {
	case w.Gen != gen || at >= w.Start+Buckets:
		w = Window{Gen: gen, Start: at}
	case at > w.Start:
		n := int(at - w.Start)
		copy(w.Calls[n:], w.Calls[:Buckets-n])
		copy(w.Failed[n:], w.Failed[:Buckets-n])
		clear(w.Calls[:n])
		clear(w.Failed[:n])
		w.Start = at
	case at <= w.Start-Buckets:
		return w // older than the window: drop
	}
	i := max(int(w.Start-at), 0)
	w.Calls[i] += int64(calls)
	w.Failed[i] += int64(min(failed, calls))
	return w
}

// Totals returns the calls and failures in w.
func (w Window) Totals() (calls, failed int) {
	for i := range Buckets {
		calls += int(w.Calls[i])
		failed += int(w.Failed[i])
	}
	return calls, failed
}

// Reconcile returns s after a push of the state want that its caller
// reached while it could not reach the store, and whether it changed. When
// s.Seq is still base — nobody changed the record since the caller last
// saw it — the record takes want's State, Until and Level in a new
// generation (half-open with no slot taken: trials the caller granted on
// its own are not the record's). Otherwise the record moved on and wins:
// s is returned unchanged.
func (s Snapshot) Reconcile(base uint64, want Snapshot) (Snapshot, bool) {
	if s.Seq != base {
		return s, false
	}
	st, until := want.State, want.Until
	switch st {
	case Closed, Isolated:
		until = time.Time{}
	case Open, HalfOpen:
	default:
		return s, false
	}
	n := s.to(st)
	n.Until, n.Level = until, want.Level
	return n, true
}

// Clamp returns s with an Until no later than now plus the longest period
// its state may last with set (the open period of the highest backoff
// level, or a trial lease): the defence against clocks that disagree and
// records that claim an open period nobody configured.
func (s Snapshot) Clamp(set Settings, now time.Time) Snapshot {
	var longest time.Duration
	switch s.State {
	case Open:
		longest = max(set.MaxTTL, set.TTL)
	case HalfOpen:
		longest = set.TTL
	default:
		return s
	}
	if limit := now.Add(longest); s.Until.After(limit) {
		s.Until = limit
	}
	return s
}

func (s Snapshot) open(set Settings, now time.Time, level int) Snapshot {
	s = s.to(Open)
	s.Level = level
	s.Until = now.Add(set.OpenFor(level))
	return s
}

func (s Snapshot) halfOpen(set Settings, now time.Time) Snapshot {
	level := s.Level
	s = s.to(HalfOpen)
	s.Level = level
	s.Until = now.Add(set.TTL)
	return s
}

// to starts a new generation in state st with all counters cleared.
func (s Snapshot) to(st State) Snapshot {
	return Snapshot{State: st, Gen: s.Gen + 1, Seq: s.Seq + 1}
}
