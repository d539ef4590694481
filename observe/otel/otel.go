// Package otel exports the circuits of a purgatory factory as OpenTelemetry
// metrics, through the OpenTelemetry metric API (bring your own SDK and
// exporter).
//
// Instruments, all asynchronous (observed at each collection). A plain
// circuit (made with runtime.Factory.Breaker) has data points of its own,
// with its name as the attribute "circuit":
//
//	purgatory.circuit.state                 updowncounter, unit 1: 1 for the current state, 0 for the
//	                                        others (attribute state: closed, open, half_open, isolated)
//	purgatory.calls                         counter, {call} (attribute outcome: success, failure, excluded, rejected)
//	purgatory.transitions                   counter, {transition} (attributes from, to: states as above)
//	purgatory.circuit.consecutive_failures  gauge, {failure}
//	purgatory.circuit.failure_ratio         gauge, unit 1 (circuits with a failure-rate policy only)
//	purgatory.store.errors                  counter, {error}
//
// The circuits of a keyed group (runtime.Factory.Group) are observed per
// group by default, with the group's name as the attribute "group";
// [WithPerKey] gives them the data points above too, [WithWorstKeys] to
// the few circuits of each group in the most trouble:
//
//	purgatory.group.calls                   counter, {call} (attribute outcome)
//	purgatory.group.transitions             counter, {transition} (attributes from, to)
//	purgatory.group.store.errors            counter, {error}
//
// A group's counters include the counts of its removed circuits, as of
// their removal, so they never go down. For alerting, over every circuit:
//
//	purgatory.circuits                      updowncounter, {circuit}: circuits per state (attributes
//	                                        group, state); group "" counts the plain circuits
//
// Data points: 14 per plain circuit (15 with a failure-rate policy), 13 per
// group, 4 for group "" — as the Prometheus collector's series.
//
// The data points of every circuit exist from its creation; transitions
// closed→open, open→half_open, half_open→closed and half_open→open start at
// zero, the others appear with their first occurrence. Counts are of this
// process. Successes and rejections are counted from the moment Register
// was called (it turns on the factory's call counting, see
// runtime.Factory.CountCalls); the other counts, transitions included, from
// the breaker's creation. Each breaker keeps its own counts: a plain
// circuit removed with runtime.Factory.Remove loses its data points, and
// nothing of it is kept; registered again, it starts from zero.
package otel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/purgatory-go/purgatory/observe/internal/aggregate"
	"github.com/purgatory-go/purgatory/observe/internal/transitions"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// ScopeName is the instrumentation scope of the meter Register uses.
const ScopeName = "github.com/purgatory-go/purgatory/observe/otel"

// Registration is the instruments of one factory. Unregister it to stop.
type Registration struct {
	reg metric.Registration
	agg *aggregate.Aggregator
}

// Option configures [Register].
type Option func(*aggregate.Options)

// WithPerKey gives the circuits of the named keyed groups, or of every
// group when none is named, the per-circuit data points that plain
// circuits have, beside their group's. Mind the cardinality: one set per
// key.
func WithPerKey(groups ...string) Option { return aggregate.PerKeyOf(groups) }

// WithWorstKeys gives, in each keyed group without per-key data points, the n
// circuits in the most trouble the per-circuit data points too: those not closed
// first, then those with the most consecutive failures; a closed circuit
// without failures never. Which circuits these are changes as they trip
// and recover, so their data points come and go: at most n sets per group.
func WithWorstKeys(n int) Option { return aggregate.WorstOf(n) }

// Register makes the instruments of f's circuits, present and future, with
// a meter of mp named ScopeName. It turns on the factory's call counting
// and listens for removed circuits of groups, to keep their counts in
// their group's.
func Register(f *purgatory.Factory, mp metric.MeterProvider, opts ...Option) (*Registration, error) {
	var options aggregate.Options
	for _, opt := range opts {
		opt(&options)
	}
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

	circuits, err := m.Int64ObservableUpDownCounter("purgatory.circuits",
		metric.WithUnit("{circuit}"), metric.WithDescription("Circuits in each state, per keyed group (group \"\": circuits of no group)."))
	if err != nil {
		return nil, err
	}
	groupCalls, err := m.Int64ObservableCounter("purgatory.group.calls",
		metric.WithUnit("{call}"), metric.WithDescription("Calls through the circuits of a keyed group by outcome: success, failure, excluded, rejected; removed circuits included."))
	if err != nil {
		return nil, err
	}
	groupTrans, err := m.Int64ObservableCounter("purgatory.group.transitions",
		metric.WithUnit("{transition}"), metric.WithDescription("State changes of the circuits of a keyed group; removed circuits included."))
	if err != nil {
		return nil, err
	}
	groupStoreErrors, err := m.Int64ObservableCounter("purgatory.group.store.errors",
		metric.WithUnit("{error}"), metric.WithDescription("Failed operations on the state store of the circuits of a keyed group; removed circuits included."))
	if err != nil {
		return nil, err
	}

	f.CountCalls()
	agg := aggregate.New(f, options)
	callback := func(_ context.Context, o metric.Observer) error {
		groups := agg.Walk(func(s *purgatory.Status) {
			circuit := attribute.String("circuit", s.Name)
			for _, st := range transitions.States {
				v := int64(0)
				if s.State == st {
					v = 1
				}
				o.ObserveInt64(state, v, metric.WithAttributes(circuit, attribute.String("state", transitions.Label(st))))
			}
			for j, n := range aggregate.Calls(s) {
				o.ObserveInt64(calls, int64(n), metric.WithAttributes(circuit, attribute.String("outcome", aggregate.Outcomes[j])))
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
		})
		for i := range groups {
			g := &groups[i]
			group := attribute.String("group", g.Name)
			for _, st := range transitions.States {
				o.ObserveInt64(circuits, int64(g.States[st]), metric.WithAttributes(group, attribute.String("state", transitions.Label(st))))
			}
			if g.Name == "" {
				continue
			}
			for j, outcome := range aggregate.Outcomes {
				o.ObserveInt64(groupCalls, int64(g.Calls[j]), metric.WithAttributes(group, attribute.String("outcome", outcome)))
			}
			transitions.Each(&g.Transitions, func(from, to purgatory.State, n uint64) {
				o.ObserveInt64(groupTrans, int64(n), metric.WithAttributes(group,
					attribute.String("from", transitions.Label(from)), attribute.String("to", transitions.Label(to))))
			})
			o.ObserveInt64(groupStoreErrors, int64(g.StoreErrors), metric.WithAttributes(group))
		}
		return nil
	}
	reg, err := m.RegisterCallback(callback, state, calls, trans, failures, ratio, storeErrors,
		circuits, groupCalls, groupTrans, groupStoreErrors)
	if err != nil {
		agg.Close()
		return nil, err
	}
	return &Registration{reg: reg, agg: agg}, nil
}

// Unregister stops observing the factory.
func (r *Registration) Unregister() error {
	r.agg.Close()
	return r.reg.Unregister()
}
