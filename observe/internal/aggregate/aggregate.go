// Package aggregate walks a factory's circuits for the exporters: the
// circuits whose own series are exported, and the totals of every keyed
// group (see runtime.Factory.Group), so that thousands of per-key circuits
// cost a bounded number of series.
package aggregate

import (
	"slices"
	"strings"
	"sync"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// Outcomes are the call outcomes the exporters report, in the order of
// Totals.Calls.
var Outcomes = [...]string{"success", "failure", "excluded", "rejected"}

// Counters are the counts of a group that only grow.
type Counters struct {
	Calls       [len(Outcomes)]uint64 // by outcome, in the order of Outcomes
	Transitions purgatory.Transitions
	StoreErrors uint64
}

// Calls returns the calls of s by outcome, in the order of Outcomes.
func Calls(s *purgatory.Status) [len(Outcomes)]uint64 {
	return [...]uint64{s.Counts.Success, s.Counts.Failure, s.Counts.Excluded, s.Counts.Rejected}
}

func (c *Counters) add(s *purgatory.Status) {
	for i, n := range Calls(s) {
		c.Calls[i] += n
	}
	for i := range c.Transitions {
		for j := range c.Transitions[i] {
			c.Transitions[i][j] += s.Transitions[i][j]
		}
	}
	c.StoreErrors += s.Counts.StoreErrors
}

// atLeast raises every count of c to at least that of o.
func (c *Counters) atLeast(o *Counters) {
	for i := range c.Calls {
		c.Calls[i] = max(c.Calls[i], o.Calls[i])
	}
	for i := range c.Transitions {
		for j := range c.Transitions[i] {
			c.Transitions[i][j] = max(c.Transitions[i][j], o.Transitions[i][j])
		}
	}
	c.StoreErrors = max(c.StoreErrors, o.StoreErrors)
}

// Group is what the exporters report of one group.
type Group struct {
	Name   string
	States [purgatory.Isolated + 1]int // circuits per state
	Counters
	worst []purgatory.Status // its worst circuits so far, worst first (Walk)
}

// worse reports whether a is in more trouble than b: not closed before
// closed, then more consecutive failures, then by name.
func worse(a, b *purgatory.Status) bool {
	if (a.State != purgatory.Closed) != (b.State != purgatory.Closed) {
		return a.State != purgatory.Closed
	}
	if a.Failures != b.Failures {
		return a.Failures > b.Failures
	}
	return a.Name < b.Name
}

// keepWorst inserts s into worst (worst first) and keeps at most n.
func keepWorst(worst []purgatory.Status, s purgatory.Status, n int) []purgatory.Status {
	i := len(worst)
	for i > 0 && worse(&s, &worst[i-1]) {
		i--
	}
	if i >= n {
		return worst
	}
	worst = slices.Insert(worst, i, s)
	if len(worst) > n {
		worst = worst[:n]
	}
	return worst
}

// Options say which circuits have series of their own.
type Options struct {
	// PerKey gives every circuit of every group its own series.
	PerKey bool
	// PerKeyGroups gives the circuits of these groups their own series.
	PerKeyGroups []string
	// Worst gives, in each group without per-key series, the Worst
	// circuits in trouble their own series: those not closed first, then
	// those with the most consecutive failures (closed circuits without
	// failures never), ties by name.
	Worst int
}

// PerKeyOf is both exporters' per-key option: the named groups, or every
// group when none is named.
func PerKeyOf(groups []string) func(*Options) {
	return func(o *Options) {
		if len(groups) == 0 {
			o.PerKey = true
		}
		o.PerKeyGroups = append(o.PerKeyGroups, groups...)
	}
}

// WorstOf is both exporters' option for the n worst circuits of a group.
func WorstOf(n int) func(*Options) { return func(o *Options) { o.Worst = n } }

// Aggregator walks the circuits of one factory. It is safe for concurrent
// use.
type Aggregator struct {
	f      *purgatory.Factory
	opts   Options
	remove func()

	mu      sync.Mutex
	retired map[string]*Counters // per group: the counts of its removed circuits
	last    map[string]*Counters // per group: the counts last reported
}

// New returns an aggregator of f's circuits. It listens to f for removed
// circuits, whose counts it adds to their group's; Close stops it.
func New(f *purgatory.Factory, opts Options) *Aggregator {
	a := &Aggregator{f: f, opts: opts, retired: make(map[string]*Counters), last: make(map[string]*Counters)}
	a.remove = f.AddListener(purgatory.ListenerFunc(a.onEvent))
	return a
}

// Close stops listening to the factory. It is idempotent.
func (a *Aggregator) Close() { a.remove() }

func (a *Aggregator) onEvent(e purgatory.Event) {
	if e.Kind != purgatory.EventRemoved || e.Breaker == nil {
		return
	}
	g := e.Breaker.Group()
	if g == "" {
		return // a plain circuit's series go with it
	}
	s := e.Breaker.Status()
	a.mu.Lock()
	r := a.retired[g]
	if r == nil {
		r = new(Counters)
		a.retired[g] = r
	}
	r.add(&s)
	a.mu.Unlock()
}

// perKey reports whether the circuits of group have their own series.
func (a *Aggregator) perKey(group string) bool {
	return group == "" || a.opts.PerKey || slices.Contains(a.opts.PerKeyGroups, group)
}

// Walk calls circuit (which must not keep the pointer past the call) with
// the status of every circuit whose own series are exported: plain
// circuits and those of the groups asked for per key, in name order, then
// each group's worst circuits (Options.Worst), worst first, the groups in
// no set order. It returns the totals of every group, by name: "" first
// (plain circuits, States only), then every group that ever had a circuit
// while the aggregator ran. A group's counters never go down: they
// add the counts of its removed circuits (as of their removal) to those of
// its circuits.
func (a *Aggregator) Walk(circuit func(*purgatory.Status)) []Group {
	// The counts of circuits removed so far are read first: a circuit
	// removed after this is either in the list below or in neither.
	a.mu.Lock()
	groups := map[string]*Group{"": {Name: ""}}
	for name, r := range a.retired {
		groups[name] = &Group{Name: name, Counters: *r}
	}
	for name := range a.last {
		if groups[name] == nil {
			groups[name] = &Group{Name: name}
		}
	}
	a.mu.Unlock()

	// One Status for the whole walk: circuit's pointer to it escapes, and a
	// variable per circuit would be a heap allocation per circuit.
	var s purgatory.Status
	for _, b := range a.f.Breakers() {
		s = b.Status()
		name := b.Group()
		g := groups[name]
		if g == nil {
			g = &Group{Name: name}
			groups[name] = g
		}
		g.States[s.State]++
		if name != "" {
			g.add(&s)
		}
		if a.perKey(name) {
			circuit(&s)
		} else if a.opts.Worst > 0 && (s.State != purgatory.Closed || s.Failures > 0) {
			g.worst = keepWorst(g.worst, s, a.opts.Worst)
		}
	}
	for _, g := range groups {
		for i := range g.worst {
			circuit(&g.worst[i])
		}
		g.worst = nil
	}

	out := make([]Group, 0, len(groups))
	a.mu.Lock()
	for name, g := range groups {
		if name != "" {
			// A circuit removed between the two reads above is counted in
			// neither for this once; never let a counter go back.
			last := a.last[name]
			if last == nil {
				last = new(Counters)
				a.last[name] = last
			}
			g.atLeast(last)
			*last = g.Counters
		}
		out = append(out, *g)
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y Group) int { return strings.Compare(x.Name, y.Name) })
	return out
}
