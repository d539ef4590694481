// Package store defines where circuit breakers keep the state they share: the
// Store interface, the in-memory store used by default, and the pure
// transition functions every store applies.
//
// A breaker never asks its store on the hot path. It keeps a local view of
// the circuit and calls the store only when something must change: a
// failure, a success that resets pending failures, a half-open trial claim,
// the end of an open period, a manual open or close. Every answer is a
// [Snapshot] of the circuit after the operation; the breaker adopts it when
// its Seq is newer than what it has seen.
//
// Implementations must be safe for concurrent use and must make each
// operation atomic: a store shared by several processes (see the redis
// subpackage) applies the same transitions on its server. The functions on
// [Snapshot] give the reference semantics; package storetest checks a store
// against them.
package store

import (
	"context"
	"time"
)

// State is the state of a circuit.
type State uint8

// The states of a circuit.
const (
	// Closed lets calls through and counts consecutive failures.
	Closed State = iota
	// Open rejects calls until its TTL has passed.
	Open
	// HalfOpen lets a limited number of trial calls through.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "invalid"
}

// Settings are the parts of a circuit's configuration that a store keeps
// and shares. The first registration of a circuit name decides them.
type Settings struct {
	Threshold int           // consecutive failures that open the circuit, >= 1
	TTL       time.Duration // how long the circuit stays open, > 0
	Trials    int           // calls let through at once while half-open, >= 1
}

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
	// Claimed is the number of trial calls in flight while half-open.
	Claimed int
	// Succeeded is the number of trial calls that succeeded while half-open.
	Succeeded int
	// OpenUntil is when an open circuit may become half-open.
	OpenUntil time.Time
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
	// Failure records a failed call admitted in generation op.Gen; it opens
	// the circuit when the threshold is reached or when it was half-open.
	Failure(ctx context.Context, op Op) (Snapshot, error)
	// Success records a successful call admitted in generation op.Gen: it
	// resets the failure count while closed and counts a trial success
	// while half-open, closing the circuit after Settings.Trials of them.
	Success(ctx context.Context, op Op) (Snapshot, error)
	// Claim takes one half-open trial slot in generation op.Gen. It reports
	// whether the slot was granted; at most Settings.Trials are held at once.
	// Claiming an open circuit whose OpenUntil is not after op.Now first
	// moves it to half-open.
	Claim(ctx context.Context, op Op) (Snapshot, bool, error)
	// Release gives back a trial slot whose call ended with neither success
	// nor failure (the caller gave up).
	Release(ctx context.Context, op Op) (Snapshot, error)
	// Expire moves an open circuit of generation op.Gen to half-open once
	// op.Now is not before its OpenUntil.
	Expire(ctx context.Context, op Op) (Snapshot, error)
	// Force opens (for Settings.TTL from op.Now) or closes the circuit,
	// whatever its state and generation.
	Force(ctx context.Context, op Op, to State) (Snapshot, error)
	// Watch calls fn with every snapshot the store learns of for the named
	// circuit, including changes made by other users of the store, until
	// stop is called. fn must not block; snapshots may arrive out of order
	// (order them by Seq) and more than once.
	Watch(name string, fn func(Snapshot)) (stop func())
}

// New returns the snapshot of a circuit that was just registered.
func New() Snapshot { return Snapshot{State: Closed, Gen: 1, Seq: 1} }

// Failure returns s after a failure of a call admitted in generation gen,
// and whether it changed.
func (s Snapshot) Failure(set Settings, gen uint64, now time.Time) (Snapshot, bool) {
	if gen != s.Gen {
		return s, false
	}
	switch s.State {
	case Closed:
		s.Failures++
		if s.Failures >= set.Threshold {
			return s.open(set, now), true
		}
		s.Seq++
		return s, true
	case HalfOpen:
		return s.open(set, now), true
	}
	return s, false
}

// Success returns s after a success of a call admitted in generation gen,
// and whether it changed.
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
			return s.to(Closed), true
		}
		s.Seq++
		return s, true
	}
	return s, false
}

// Claim returns s after an attempt to claim a trial slot in generation gen,
// and whether the slot was granted. An open circuit whose OpenUntil is not
// after now becomes half-open first; the claim then applies to that new
// generation.
func (s Snapshot) Claim(set Settings, gen uint64, now time.Time) (Snapshot, bool) {
	if s.State == Open && s.Gen == gen && !now.Before(s.OpenUntil) {
		s = s.to(HalfOpen)
		gen = s.Gen
	}
	if s.State != HalfOpen || s.Gen != gen || s.Claimed >= set.Trials {
		return s, false
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

// Expire returns s moved to half-open if it is open in generation gen and
// its OpenUntil is not after now, and whether it changed.
func (s Snapshot) Expire(gen uint64, now time.Time) (Snapshot, bool) {
	if s.State != Open || s.Gen != gen || now.Before(s.OpenUntil) {
		return s, false
	}
	return s.to(HalfOpen), true
}

// Force returns s opened (until now+set.TTL) or closed, as asked. Forcing a
// circuit into the state it is in starts a new generation all the same, so
// that calls admitted before are ignored.
func (s Snapshot) Force(set Settings, to State, now time.Time) Snapshot {
	if to == Open {
		return s.open(set, now)
	}
	return s.to(to)
}

func (s Snapshot) open(set Settings, now time.Time) Snapshot {
	s = s.to(Open)
	s.OpenUntil = now.Add(set.TTL)
	return s
}

// to starts a new generation in state st with all counters cleared.
func (s Snapshot) to(st State) Snapshot {
	return Snapshot{State: st, Gen: s.Gen + 1, Seq: s.Seq + 1}
}
