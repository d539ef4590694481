// Package prometheus exports the circuits of a purgatory factory as
// Prometheus metrics.
//
// Register a [Collector] and every circuit of the factory has its series
// from the moment it is created (no "No data" panels). A plain circuit
// (made with runtime.Factory.Breaker) has series of its own:
//
//	purgatory_circuit_state{circuit,state}            gauge: 1 for the current state, 0 for the others
//	                                                  (state: closed, open, half_open, isolated)
//	purgatory_calls_total{circuit,outcome}            counter (outcome: success, failure, excluded, rejected)
//	purgatory_transitions_total{circuit,from,to}      counter; closed→open, open→half_open, half_open→closed
//	                                                  and half_open→open exist from the start, others
//	                                                  from their first occurrence
//	purgatory_circuit_consecutive_failures{circuit}   gauge
//	purgatory_circuit_failure_ratio{circuit}          gauge, for circuits with a failure-rate policy only
//	purgatory_store_errors_total{circuit}             counter
//
// The circuits of a keyed group (runtime.Factory.Group: one circuit per
// host, tenant, ...) are many and come and go, so by default they are
// exported per group, not per key; [WithPerKeySeries] gives them the
// series above too, and [WithWorstKeys] gives them to the few circuits of
// each group in the most trouble:
//
//	purgatory_group_calls_total{group,outcome}          counter: the calls of the group's circuits
//	purgatory_group_transitions_total{group,from,to}    counter: their state changes (the usual four from
//	                                                    the start, others from their first occurrence)
//	purgatory_group_store_errors_total{group}           counter
//
// A group's counters include the counts of its circuits that were removed
// (evicted when idle, or runtime.Factory.Remove), as of their removal, so
// they never go down. And for alerting, over every circuit:
//
//	purgatory_circuits{group,state}    gauge: how many circuits are in each state, per group;
//	                                   group="" counts the plain circuits (present from the start)
//
// Series: 14 per plain circuit (15 with a failure-rate policy), 13 per
// group (4 circuits, 4 calls, 4 transitions, 1 store errors; more once
// unusual transitions such as manual ones occur), 4 for group="". A group
// of 10,000 circuits costs 13 series by default, 140,013 with per-key
// series.
//
// Counts are of this process. Successes and rejections are counted from the
// moment the collector was made (NewCollector turns on the factory's call
// counting, see runtime.Factory.CountCalls); the other counts, transitions
// included, from the breaker's creation. Each breaker keeps its own counts:
// a plain circuit removed with runtime.Factory.Remove loses its series, and
// the collector keeps nothing of it; registered again, it starts from zero.
// The collector keeps under 500 bytes per group, nothing per circuit.
package prometheus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/purgatory-go/purgatory/observe/internal/aggregate"
	"github.com/purgatory-go/purgatory/observe/internal/transitions"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

var (
	stateDesc = prometheus.NewDesc("purgatory_circuit_state",
		"State of the circuit: 1 for the current state, 0 for the others.",
		[]string{"circuit", "state"}, nil)
	callsDesc = prometheus.NewDesc("purgatory_calls_total",
		"Calls through the circuit by outcome: success, failure, excluded (an excluded error, not a failure), rejected (not made: the circuit was open).",
		[]string{"circuit", "outcome"}, nil)
	transitionsDesc = prometheus.NewDesc("purgatory_transitions_total",
		"State changes of the circuit.",
		[]string{"circuit", "from", "to"}, nil)
	failuresDesc = prometheus.NewDesc("purgatory_circuit_consecutive_failures",
		"Consecutive failures of the closed circuit.",
		[]string{"circuit"}, nil)
	ratioDesc = prometheus.NewDesc("purgatory_circuit_failure_ratio",
		"Failed calls over calls in the circuit's rolling window (circuits with a failure-rate policy only).",
		[]string{"circuit"}, nil)
	storeErrorsDesc = prometheus.NewDesc("purgatory_store_errors_total",
		"Failed operations on the circuit's state store.",
		[]string{"circuit"}, nil)

	circuitsDesc = prometheus.NewDesc("purgatory_circuits",
		"Circuits in each state, per keyed group (group=\"\": circuits of no group).",
		[]string{"group", "state"}, nil)
	groupCallsDesc = prometheus.NewDesc("purgatory_group_calls_total",
		"Calls through the circuits of a keyed group by outcome: success, failure, excluded, rejected; removed circuits included.",
		[]string{"group", "outcome"}, nil)
	groupTransitionsDesc = prometheus.NewDesc("purgatory_group_transitions_total",
		"State changes of the circuits of a keyed group; removed circuits included.",
		[]string{"group", "from", "to"}, nil)
	groupStoreErrorsDesc = prometheus.NewDesc("purgatory_group_store_errors_total",
		"Failed operations on the state store of the circuits of a keyed group; removed circuits included.",
		[]string{"group"}, nil)
)

// Collector is a prometheus.Collector over the circuits of one factory.
// Make it with NewCollector; it is safe for concurrent use.
type Collector struct {
	agg *aggregate.Aggregator
}

var _ prometheus.Collector = (*Collector)(nil)

// Option configures a [Collector].
type Option func(*aggregate.Options)

// WithPerKeySeries gives the circuits of the named keyed groups, or of
// every group when none is named, the per-circuit series that plain
// circuits have (14 each), beside their group's. Mind the cardinality: one
// series set per key.
func WithPerKeySeries(groups ...string) Option { return aggregate.PerKeyOf(groups) }

// WithWorstKeys gives, in each keyed group without per-key series, the n
// circuits in the most trouble the per-circuit series too: those not closed
// first, then those with the most consecutive failures; a closed circuit
// without failures never. Which circuits these are changes as they trip
// and recover, so their series come and go: at most n sets per group.
func WithWorstKeys(n int) Option { return aggregate.WorstOf(n) }

// NewCollector returns a collector of f's circuits, present and future.
// It turns on the factory's call counting (runtime.Factory.CountCalls) and
// listens for removed circuits of groups, to keep their counts in their
// group's; Close stops listening.
func NewCollector(f *purgatory.Factory, opts ...Option) *Collector {
	var o aggregate.Options
	for _, opt := range opts {
		opt(&o)
	}
	f.CountCalls()
	return &Collector{agg: aggregate.New(f, o)}
}

// Close stops listening to the factory: a group's circuits removed from
// then on take their counts with them. The collector still reports every
// metric. It is idempotent.
func (c *Collector) Close() { c.agg.Close() }

// Describe sends the descriptors of every metric the collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- callsDesc
	ch <- transitionsDesc
	ch <- failuresDesc
	ch <- ratioDesc
	ch <- storeErrorsDesc
	ch <- circuitsDesc
	ch <- groupCallsDesc
	ch <- groupTransitionsDesc
	ch <- groupStoreErrorsDesc
}

// Collect sends the current metrics of the factory's circuits and groups.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	groups := c.agg.Walk(func(s *purgatory.Status) {
		name := s.Name
		for _, st := range transitions.States {
			v := 0.0
			if s.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, name, transitions.Label(st))
		}
		for j, n := range aggregate.Calls(s) {
			ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(n), name, aggregate.Outcomes[j])
		}
		transitions.Each(&s.Transitions, func(from, to purgatory.State, n uint64) {
			ch <- prometheus.MustNewConstMetric(transitionsDesc, prometheus.CounterValue, float64(n),
				name, transitions.Label(from), transitions.Label(to))
		})
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.GaugeValue, float64(s.Failures), name)
		if s.Config.FailureRate > 0 {
			ch <- prometheus.MustNewConstMetric(ratioDesc, prometheus.GaugeValue, s.FailureRatio, name)
		}
		ch <- prometheus.MustNewConstMetric(storeErrorsDesc, prometheus.CounterValue, float64(s.Counts.StoreErrors), name)
	})
	for i := range groups {
		g := &groups[i]
		for _, st := range transitions.States {
			ch <- prometheus.MustNewConstMetric(circuitsDesc, prometheus.GaugeValue, float64(g.States[st]), g.Name, transitions.Label(st))
		}
		if g.Name == "" {
			continue
		}
		for j, outcome := range aggregate.Outcomes {
			ch <- prometheus.MustNewConstMetric(groupCallsDesc, prometheus.CounterValue, float64(g.Calls[j]), g.Name, outcome)
		}
		transitions.Each(&g.Transitions, func(from, to purgatory.State, n uint64) {
			ch <- prometheus.MustNewConstMetric(groupTransitionsDesc, prometheus.CounterValue, float64(n),
				g.Name, transitions.Label(from), transitions.Label(to))
		})
		ch <- prometheus.MustNewConstMetric(groupStoreErrorsDesc, prometheus.CounterValue, float64(g.StoreErrors), g.Name)
	}
}
