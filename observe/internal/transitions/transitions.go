// Package transitions counts the state changes of a factory's circuits, for
// the exporters: a listener that keeps one counter per {circuit, from, to}.
package transitions

import (
	"sort"
	"sync"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// Label returns the metric label value of a state: closed, open, half_open
// or isolated.
func Label(s purgatory.State) string {
	switch s {
	case purgatory.Closed:
		return "closed"
	case purgatory.Open:
		return "open"
	case purgatory.HalfOpen:
		return "half_open"
	case purgatory.Isolated:
		return "isolated"
	}
	return "invalid"
}

// States are the states every circuit reports, in label order.
var States = []purgatory.State{purgatory.Closed, purgatory.Open, purgatory.HalfOpen, purgatory.Isolated}

// Usual are the transitions a circuit makes on its own; their counters
// exist (at zero) from the moment a circuit is seen, the others from their
// first occurrence.
var Usual = []Key{
	{From: purgatory.Closed, To: purgatory.Open},
	{From: purgatory.Open, To: purgatory.HalfOpen},
	{From: purgatory.HalfOpen, To: purgatory.Closed},
	{From: purgatory.HalfOpen, To: purgatory.Open},
}

// Key is one transition of a circuit.
type Key struct{ From, To purgatory.State }

// Count is one counter of a circuit's transitions.
type Count struct {
	Key
	N uint64
}

// Tracker counts transitions per circuit. It is a purgatory.Listener.
type Tracker struct {
	mu     sync.Mutex
	counts map[string]map[Key]uint64
}

// New returns an empty tracker.
func New() *Tracker { return &Tracker{counts: make(map[string]map[Key]uint64)} }

func (t *Tracker) circuit(name string) map[Key]uint64 {
	m := t.counts[name]
	if m == nil {
		m = make(map[Key]uint64, len(Usual))
		for _, k := range Usual {
			m[k] = 0
		}
		t.counts[name] = m
	}
	return m
}

// OnEvent counts state changes, makes the usual counters of created
// circuits and drops those of removed ones.
func (t *Tracker) OnEvent(e purgatory.Event) {
	switch e.Kind {
	case purgatory.EventCreated:
		t.mu.Lock()
		t.circuit(e.Circuit)
		t.mu.Unlock()
	case purgatory.EventStateChanged:
		t.mu.Lock()
		t.circuit(e.Circuit)[Key{e.From, e.To}]++
		t.mu.Unlock()
	case purgatory.EventRemoved:
		t.mu.Lock()
		delete(t.counts, e.Circuit)
		t.mu.Unlock()
	}
}

// Counts appends the counters of the named circuit to dst, in a stable order
// (by from, then to), creating the usual ones at zero if the circuit is new
// to the tracker.
func (t *Tracker) Counts(dst []Count, name string) []Count {
	t.mu.Lock()
	start := len(dst)
	for k, n := range t.circuit(name) {
		dst = append(dst, Count{k, n})
	}
	t.mu.Unlock()
	s := dst[start:]
	sort.Slice(s, func(i, j int) bool {
		if s[i].From != s[j].From {
			return s[i].From < s[j].From
		}
		return s[i].To < s[j].To
	})
	return dst
}
