package store

import "time"

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

// New returns the snapshot of a circuit that was just registered.
func New() Snapshot { return Snapshot{State: Closed, Gen: 1, Seq: 1} }

// Failure returns s after a failure of a call admitted in generation gen,
// and whether it changed: while closed it counts a consecutive failure and
// opens the circuit at the threshold (if there is one); while half-open it
// re-opens it, one backoff level up.
func (s Snapshot) Failure(set Settings, gen uint64, now time.Time) (Snapshot, bool) {
	changed := s.failure(set, gen, now)
	return s, changed
}

// failure is [Snapshot.Failure] in place: it changes *s only when it
// reports a change.
func (s *Snapshot) failure(set Settings, gen uint64, now time.Time) bool {
	if gen != s.Gen {
		return false
	}
	switch s.State {
	case Closed:
		if set.Threshold <= 0 {
			return false
		}
		s.Failures++
		if s.Failures >= set.Threshold {
			*s = s.open(set, now, 0)
			return true
		}
		s.Seq++
		return true
	case HalfOpen:
		*s = s.open(set, now, s.Level+1)
		return true
	}
	return false
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
	changed := s.success(set, gen)
	return s, changed
}

// success is [Snapshot.Success] in place: it changes *s only when it
// reports a change.
func (s *Snapshot) success(set Settings, gen uint64) bool {
	if gen != s.Gen {
		return false
	}
	switch s.State {
	case Closed:
		if s.Failures == 0 {
			return false
		}
		s.Failures = 0
		s.Seq++
		return true
	case HalfOpen:
		s.Succeeded++
		if s.Succeeded >= set.Trials {
			n := s.to(Closed)
			n.Succeeded = s.Succeeded // closed by its trials: a recovery
			*s = n
			return true
		}
		if s.Claimed > 0 {
			s.Claimed-- // a trial that reported holds no slot: its lease is over
		}
		s.Seq++
		return true
	}
	return false
}

// Claim returns s after an attempt to claim a trial slot in generation gen,
// and whether the slot was granted. An open circuit whose Until is not
// after now becomes half-open first, and the claim applies to that new
// generation. The first claim of a half-open circuit with no slot taken
// starts the trial lease (Until = now + TTL); a claim once the lease ran
// out with slots still taken — now not before Until + skew, see
// [Snapshot.Expire] — re-opens the circuit instead.
func (s Snapshot) Claim(set Settings, gen uint64, now time.Time, skew time.Duration) (Snapshot, bool) {
	if s.State == Open && s.Gen == gen && !now.Before(s.Until) {
		s = s.halfOpen(set, now)
		gen = s.Gen
	}
	if s.State != HalfOpen || s.Gen != gen {
		return s, false
	}
	if s.leaseOver(now, skew) {
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
//
// The lease's Until was written with the claimer's clock, now is the
// caller's: skew (>= 0) is the largest difference between the two that the
// caller tolerates (taken in [0, MaxPeriod]), and the lease has run out
// only once now is not before Until + skew. So a claimer whose clock is behind by up to skew never sees
// its lease cut short by another process, and a trial that never reports
// holds its slot for at most skew longer. An open period ends at Until
// whatever skew.
func (s Snapshot) Expire(set Settings, gen uint64, now time.Time, skew time.Duration) (Snapshot, bool) {
	if s.Gen != gen || now.Before(s.Until) {
		return s, false
	}
	switch s.State {
	case Open:
		return s.halfOpen(set, now), true
	case HalfOpen:
		if !s.leaseOver(now, skew) {
			return s, false // nobody holds a slot, or the lease may still run on the claimer's clock
		}
		return s.open(set, now, s.Level+1), true
	}
	return s, false
}

// leaseOver reports whether s is half-open with trial slots taken and its
// lease has run out at now, allowing skew between the clocks.
func (s Snapshot) leaseOver(now time.Time, skew time.Duration) bool {
	return s.State == HalfOpen && s.Claimed > 0 && !now.Before(s.Until.Add(min(max(skew, 0), MaxPeriod)))
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
