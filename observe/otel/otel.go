// Package otel exports the circuits of a purgatory factory as OpenTelemetry
// metrics, through the OpenTelemetry metric API (bring your own SDK and
// exporter).
//
// Instruments, all asynchronous (observed at each collection), with the
// circuit's name as the attribute "circuit":
//
//	purgatory.circuit.state                 updowncounter, unit 1: 1 for the current state, 0 for the
//	                                        others (attribute state: closed, open, half_open, isolated)
//	purgatory.calls                         counter, {call} (attribute outcome: success, failure, excluded, rejected)
//	purgatory.transitions                   counter, {transition} (attributes from, to: states as above)
//	purgatory.circuit.consecutive_failures  gauge, {failure}
//	purgatory.circuit.failure_ratio         gauge, unit 1 (circuits with a failure-rate policy only)
//	purgatory.store.errors                  counter, {error}
//
// The data points of every circuit exist from its creation; transitions
// closed→open, open→half_open, half_open→closed and half_open→open start at
// zero, the others appear with their first occurrence. Counts are of this
// process. Successes and rejections are counted from the moment Register
// was called (it turns on the factory's call counting, see
// runtime.Factory.CountCalls); the other counts, transitions included, from
// the breaker's creation. Each breaker keeps its own counts: a circuit
// removed with runtime.Factory.Remove loses its data points, and nothing of
// it is kept; registered again, it starts from zero.
package otel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/purgatory-go/purgatory/observe/internal/transitions"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// ScopeName is the instrumentation scope of the meter Register uses.
const ScopeName = "github.com/purgatory-go/purgatory/observe/otel"

// Registration is the instruments of one factory. Unregister it to stop.
type Registration struct {
	reg metric.Registration
}

// Register makes the instruments of f's circuits, present and future, with
// a meter of mp named ScopeName. It turns on the factory's call counting.
func Register(f *purgatory.Factory, mp metric.MeterProvider) (*Registration, error) {
	m := mp.Meter(ScopeName)
	state, err := m.Int64ObservableUpDownCounter("purgatory.circuit.state",
		metric.WithUnit("1"), metric.WithDescription("State of the circuit: 1 for the current state, 0 for the others."))
	if err != nil {
		return nil, err
	}
	calls, err := m.Int64ObservableCounter("purgatory.calls",
		metric.WithUnit("{call}"), metric.WithDescription("Calls through the circuit by outcome: success, failure, excluded, rejected."))
	if err != nil {
		return nil, err
	}
	trans, err := m.Int64ObservableCounter("purgatory.transitions",
		metric.WithUnit("{transition}"), metric.WithDescription("State changes of the circuit."))
	if err != nil {
		return nil, err
	}
	failures, err := m.Int64ObservableGauge("purgatory.circuit.consecutive_failures",
		metric.WithUnit("{failure}"), metric.WithDescription("Consecutive failures of the closed circuit."))
	if err != nil {
		return nil, err
	}
	ratio, err := m.Float64ObservableGauge("purgatory.circuit.failure_ratio",
		metric.WithUnit("1"), metric.WithDescription("Failed calls over calls in the circuit's rolling window (circuits with a failure-rate policy only)."))
	if err != nil {
		return nil, err
	}
	storeErrors, err := m.Int64ObservableCounter("purgatory.store.errors",
		metric.WithUnit("{error}"), metric.WithDescription("Failed operations on the circuit's state store."))
	if err != nil {
		return nil, err
	}

	f.CountCalls()
	callback := func(_ context.Context, o metric.Observer) error {
		for _, b := range f.Breakers() {
			s := b.Status()
			circuit := attribute.String("circuit", s.Name)
			for _, st := range transitions.States {
				v := int64(0)
				if s.State == st {
					v = 1
				}
				o.ObserveInt64(state, v, metric.WithAttributes(circuit, attribute.String("state", transitions.Label(st))))
			}
			for _, c := range [...]struct {
				outcome string
				n       uint64
			}{{"success", s.Counts.Success}, {"failure", s.Counts.Failure}, {"excluded", s.Counts.Excluded}, {"rejected", s.Counts.Rejected}} {
				o.ObserveInt64(calls, int64(c.n), metric.WithAttributes(circuit, attribute.String("outcome", c.outcome)))
			}
			transitions.Each(&s.Transitions, func(from, to purgatory.State, n uint64) {
				o.ObserveInt64(trans, int64(n), metric.WithAttributes(circuit,
					attribute.String("from", transitions.Label(from)), attribute.String("to", transitions.Label(to))))
			})
			o.ObserveInt64(failures, int64(s.Failures), metric.WithAttributes(circuit))
			if s.Config.FailureRate > 0 {
				o.ObserveFloat64(ratio, s.FailureRatio, metric.WithAttributes(circuit))
			}
			o.ObserveInt64(storeErrors, int64(s.Counts.StoreErrors), metric.WithAttributes(circuit))
		}
		return nil
	}
	reg, err := m.RegisterCallback(callback, state, calls, trans, failures, ratio, storeErrors)
	if err != nil {
		return nil, err
	}
	return &Registration{reg: reg}, nil
}

// Unregister stops observing the factory.
func (r *Registration) Unregister() error { return r.reg.Unregister() }
