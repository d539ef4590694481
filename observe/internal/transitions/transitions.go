// Package transitions holds what the exporters share about states and
// state changes: label values and which transition counters a circuit
// reports.
package transitions

import (
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

// usual reports whether a circuit makes the transition from -> to on its
// own: closed→open, open→half_open, half_open→closed and half_open→open.
// Their counters exist (at zero) from a circuit's creation, the others from
// their first occurrence.
func usual(from, to purgatory.State) bool {
	switch from {
	case purgatory.Closed:
		return to == purgatory.Open
	case purgatory.Open:
		return to == purgatory.HalfOpen
	case purgatory.HalfOpen:
		return to == purgatory.Closed || to == purgatory.Open
	}
	return false
}

// Each calls fn for every transition counter a circuit with counts t
// reports (the usual ones, and the others once they occurred), in a stable
// order: by from, then to.
func Each(t *purgatory.Transitions, fn func(from, to purgatory.State, n uint64)) {
	for _, from := range States {
		for _, to := range States {
			if n := t[from][to]; n > 0 || usual(from, to) {
				fn(from, to, n)
			}
		}
	}
}
