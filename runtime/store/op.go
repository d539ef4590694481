package store

import (
	"context"
	"fmt"
	"time"
)

// Op describes one store operation: which circuit, its settings (so that a
// store that lost the record can recreate it), the generation the caller's
// result belongs to and the caller's clock reading.
type Op struct {
	Circuit  string
	Settings Settings
	Gen      uint64
	Now      time.Time
	// Skew is, for Claim and Expire, the largest difference between the
	// clocks of the processes sharing the store that the caller tolerates:
	// a trial lease with slots taken ends only once Now is not before its
	// Until + Skew (see [Snapshot.Expire]). Other operations ignore it.
	Skew time.Duration
}

// Kind names an operation of the table every store applies: one kind per
// transition of a [Snapshot], so that a breaker, [Memory] and a store's
// differential test dispatch an operation the same way — through
// [Snapshot.Apply] for the reference semantics and [Do] for a Store.
type Kind uint8

// The operations. The zero Kind is none of them: Apply leaves the snapshot
// as it is and Do returns an error.
const (
	Failure   Kind = iota + 1 // one failed call ([Snapshot.Failure], [Store.Failure])
	Failures                  // Change.N failed calls in a row ([Snapshot.FailureN], [FailureBatcher])
	Success                   // a successful call ([Snapshot.Success], [Store.Success])
	Claim                     // a half-open trial slot ([Snapshot.Claim], [Store.Claim])
	Release                   // a trial slot given back unused ([Snapshot.Release], [Store.Release])
	Expire                    // the end of an open period or trial lease ([Snapshot.Expire], [Store.Expire])
	Force                     // a move to Change.To ([Snapshot.Force], [Store.Force])
	Record                    // a rate circuit's counts ([Snapshot.Record], [Store.Record])
	Reconcile                 // a state reached away from the store ([Snapshot.Reconcile], [Store.Reconcile])
)

var kindNames = [...]string{
	Failure: "failure", Failures: "failures", Success: "success", Claim: "claim", Release: "release",
	Expire: "expire", Force: "force", Record: "record", Reconcile: "reconcile",
}

// String returns the operation's name in lower case ("failure", "claim",
// ...), or "kind(N)" for a value that is not a Kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Timed reports whether the operation needs the caller's clock reading
// (Op.Now): every kind but Success and Release, whose transitions ignore
// it, so that a caller may skip reading its clock for them. (Reconcile's
// transition ignores it too, but it is sent with the clock all the same,
// as the runtime always did.)
func (k Kind) Timed() bool { return k != Success && k != Release }

// Change is one operation of the table: its kind and the arguments of its
// kind beyond the generation and the clock reading every operation carries
// (see [Op]). Fields a kind does not name are ignored.
type Change struct {
	Kind Kind
	// N is, for Failures, how many failures in a row, and for Record, how
	// many calls were counted.
	N int
	// Failed is, for Record, how many of the N calls failed.
	Failed int
	// To is, for Force, the state to move to.
	To State
	// Base and Want are, for Reconcile, the Seq the caller last saw of the
	// record and the state it reached on its own.
	Base uint64
	Want Snapshot
	// Skew is, for Claim and Expire, the clock skew the caller tolerates
	// (see [Op.Skew]); [Do] sends it as Op.Skew.
	Skew time.Duration
}

// Apply returns s after the operation c of a call admitted in generation
// gen, at now, under the settings in force set: the transition of package
// store that c.Kind names (see [Kind]). changed reports whether the
// snapshot changed — a new Seq (a Claim that re-opens a circuit whose lease
// ran out changes it without granting; a Force always changes it) — and
// granted whether a Claim got a trial slot. w is the circuit's rolling
// window: Record reads it and stores the window after it; the other kinds
// do not touch it (it may be nil for them). c is read, not kept: it is
// passed by pointer because a Change carries a whole Snapshot (Reconcile's
// Want) and copying it cost the failure path more than the transition
// (BenchmarkBreaker/ClosedFailureThenSuccess in package runtime).
func (s Snapshot) Apply(set Settings, w *Window, gen uint64, now time.Time, c *Change) (next Snapshot, changed, granted bool) {
	changed, granted = s.Step(set, w, gen, now, c)
	return s, changed, granted
}

// Step is [Snapshot.Apply] in place: it applies the operation c to *s and
// reports whether *s changed and whether a Claim got a trial slot, without
// copying the snapshot in and out (a breaker's local state, under its
// lock). *s is left as it was when Step reports no change.
func (s *Snapshot) Step(set Settings, w *Window, gen uint64, now time.Time, c *Change) (changed, granted bool) {
	switch c.Kind {
	case Failure:
		return s.failure(set, gen, now), false
	case Success:
		return s.success(set, gen), false
	}
	return s.step(set, w, gen, now, c)
}

// step is Step for the kinds but Failure and Success: out of line, so that
// the copies of the snapshot it makes cost those two nothing.
func (s *Snapshot) step(set Settings, w *Window, gen uint64, now time.Time, c *Change) (changed, granted bool) {
	switch c.Kind {
	case Failures:
		*s, changed = s.FailureN(set, gen, c.N, now)
	case Claim:
		seq := s.Seq
		*s, granted = s.Claim(set, gen, now, c.Skew)
		changed = s.Seq != seq
	case Release:
		*s, changed = s.Release(gen)
	case Expire:
		*s, changed = s.Expire(set, gen, now, c.Skew)
	case Force:
		*s, changed = s.Force(set, c.To, now), true
	case Record:
		*s, *w, changed = s.Record(*w, set, gen, c.N, c.Failed, now)
	case Reconcile:
		*s, changed = s.Reconcile(c.Base, c.Want)
	}
	return changed, granted
}

// Timed reports whether [Snapshot.Step] of c on *s, in generation gen
// under set, reads its clock argument: as c.Kind.Timed, but a Failure only
// when it opens the circuit (the failure that reaches the threshold while
// closed, or a trial's while half-open). A caller that applies c to a
// snapshot it holds may skip reading its clock when it reports false: the
// transition is the same whatever the time.
func (s *Snapshot) Timed(set Settings, gen uint64, c *Change) bool {
	if c.Kind != Failure {
		return c.Kind.Timed()
	}
	if gen != s.Gen {
		return false
	}
	switch s.State {
	case Closed:
		return set.Threshold > 0 && s.Failures+1 >= set.Threshold
	case HalfOpen:
		return true
	}
	return false
}

// Do applies the operation c, for a call admitted in generation op.Gen at
// op.Now, to the circuit op names in st: it calls the Store method of c's
// kind and returns its snapshot, whether a Claim was granted, and its
// error. Failures goes to [FailureBatcher.Failures] when st has it, else
// to c.N calls of Failure in a row (stopping at the first error; c.N < 1
// is an error). For Claim and Expire, op.Skew is c.Skew.
func Do(ctx context.Context, st Store, op Op, c Change) (snap Snapshot, granted bool, err error) {
	if c.Kind == Claim || c.Kind == Expire {
		op.Skew = c.Skew
	}
	switch c.Kind {
	case Failure:
		snap, err = st.Failure(ctx, op)
	case Failures:
		if b, ok := st.(FailureBatcher); ok {
			snap, err = b.Failures(ctx, op, c.N)
			break
		}
		if c.N < 1 {
			return snap, false, fmt.Errorf("purgatory/store: failures %q: bad count %d", op.Circuit, c.N)
		}
		for range c.N {
			if snap, err = st.Failure(ctx, op); err != nil {
				break
			}
		}
	case Success:
		snap, err = st.Success(ctx, op)
	case Claim:
		snap, granted, err = st.Claim(ctx, op)
	case Release:
		snap, err = st.Release(ctx, op)
	case Expire:
		snap, err = st.Expire(ctx, op)
	case Force:
		snap, err = st.Force(ctx, op, c.To)
	case Record:
		snap, err = st.Record(ctx, op, c.N, c.Failed)
	case Reconcile:
		snap, err = st.Reconcile(ctx, op, c.Base, c.Want)
	default:
		err = fmt.Errorf("purgatory/store: %q: no operation %v", op.Circuit, c.Kind)
	}
	return snap, granted, err
}
