package runtime

import (
	"slices"
	"strings"
	"time"
)

// Counts are the outcomes of one circuit's calls in this process, counted
// from the moment the factory's counting was turned on (see
// [Factory.CountCalls]); failures, exclusions, cancellations and store
// errors are counted always. Counts only grow.
type Counts struct {
	Success  uint64 // calls that succeeded
	Failure  uint64 // calls that failed (slow calls and panics included)
	Excluded uint64 // calls whose error an exclude matcher matched
	Ignored  uint64 // calls that ended with their caller's cancellation or an ignored error (Config.Ignore)
	Rejected uint64 // calls the circuit rejected
	// StoreErrors counts failed store operations (every one, where
	// EventStoreError is sent once per episode).
	StoreErrors uint64
}

// Status is one circuit as this process sees it, for dashboards and
// exporters. It is a copy: it does not change when the circuit does.
type Status struct {
	Name  string
	State State
	// Seq orders the statuses and events of one circuit: it grows with
	// every change this process saw.
	Seq uint64
	// Failures is the count of consecutive failures while closed.
	Failures int
	// Calls and Failed are a rate circuit's window totals as last merged
	// with the store plus this process's counts not merged yet, and
	// FailureRatio is Failed/Calls (0 without calls or without a rate
	// policy).
	Calls, Failed int
	FailureRatio  float64
	// OpenedAt is when the circuit last left the closed state (zero if it
	// never did), by this process's clock.
	OpenedAt time.Time
	// Until is, while open, when the circuit may become half-open; while
	// half-open, when the trial lease ends.
	Until time.Time
	// RetryAfter is the time left until Until, as of the call to Status
	// (zero unless open).
	RetryAfter time.Duration
	Config     Config
	Counts     Counts
	// Transitions counts the circuit's state changes this process saw
	// since the breaker was made.
	Transitions Transitions
}

// Transitions counts a circuit's state changes by old and new state:
// t[Open][HalfOpen] is how many times it went from open to half-open. A
// breaker keeps its own counts, so a circuit removed from its factory and
// registered again starts from zero, whatever the removed breaker does
// later. The counts are kept from the first change on (made by the first
// one, so a circuit that never changed pays nothing for them).
type Transitions [Isolated + 1][Isolated + 1]uint64

// Breakers returns the factory's breakers, sorted by name.
func (f *Factory) Breakers() []*Breaker {
	var out []*Breaker
	f.breakers.Range(func(_, v any) bool {
		b := v.(*Breaker)
		b.wait()
		out = append(out, b)
		return true
	})
	slices.SortFunc(out, func(a, b *Breaker) int { return strings.Compare(a.name, b.name) })
	return out
}

// Status returns the circuit as this process sees it.
func (b *Breaker) Status() Status {
	now := b.f.clock.Now()
	b.mu.Lock()
	s := b.snap
	st := Status{
		Name: b.name, State: s.State, Seq: b.events.seq, Failures: s.Failures,
		Calls: s.Calls, Failed: s.Failed, Until: s.Until, Config: b.cfg,
	}
	r := b.peek()
	if s.State != Closed {
		st.OpenedAt = r.openedAt
	}
	if r.trans != nil {
		st.Transitions = *r.trans
	}
	b.mu.Unlock()
	if b.rate != nil && s.State == Closed {
		// This process's counts not merged into the window yet.
		calls, failed := b.rate.unmerged(s.Gen)
		st.Calls += int(calls)
		st.Failed += int(failed)
	}
	if st.Calls > 0 {
		st.FailureRatio = float64(st.Failed) / float64(st.Calls)
	}
	if st.State == Open {
		st.RetryAfter = roundUp(st.Until.Sub(now))
	}
	st.Counts = Counts{
		Success: b.stripes.sum(successOf), Failure: b.failures.Load(), Excluded: b.excludedN.Load(),
		Ignored: b.ignoredN.Load(), Rejected: b.stripes.sum(rejectedOf), StoreErrors: b.storeErrs.Load(),
	}
	return st
}
