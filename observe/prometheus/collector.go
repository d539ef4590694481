// Package prometheus exports the circuits of a purgatory factory as
// Prometheus metrics.
//
// Register a [Collector] and every circuit of the factory has its series
// from the moment it is created (no "No data" panels):
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
// Counts are of this process. Successes and rejections are counted from the
// moment the collector was made (NewCollector turns on the factory's call
// counting, see runtime.Factory.CountCalls); the other counts, transitions
// included, from the breaker's creation. Each breaker keeps its own counts:
// a circuit removed with runtime.Factory.Remove loses its series, and the
// collector keeps nothing of it; registered again, it starts from zero.
package prometheus

import (
	"github.com/prometheus/client_golang/prometheus"

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
)

// Collector is a prometheus.Collector over the circuits of one factory.
// Make it with NewCollector; it is safe for concurrent use.
type Collector struct {
	factory *purgatory.Factory
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of f's circuits, present and future.
// It turns on the factory's call counting (runtime.Factory.CountCalls).
func NewCollector(f *purgatory.Factory) *Collector {
	f.CountCalls()
	return &Collector{factory: f}
}

// Close releases what the collector holds. It is idempotent, and the
// collector still reports every metric after it.
func (c *Collector) Close() {}

// Describe sends the descriptors of every metric the collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- callsDesc
	ch <- transitionsDesc
	ch <- failuresDesc
	ch <- ratioDesc
	ch <- storeErrorsDesc
}

// Collect sends the current metrics of every circuit of the factory.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, b := range c.factory.Breakers() {
		s := b.Status()
		name := s.Name
		for _, st := range transitions.States {
			v := 0.0
			if s.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, name, transitions.Label(st))
		}
		ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(s.Counts.Success), name, "success")
		ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(s.Counts.Failure), name, "failure")
		ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(s.Counts.Excluded), name, "excluded")
		ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(s.Counts.Rejected), name, "rejected")
		transitions.Each(&s.Transitions, func(from, to purgatory.State, n uint64) {
			ch <- prometheus.MustNewConstMetric(transitionsDesc, prometheus.CounterValue, float64(n),
				name, transitions.Label(from), transitions.Label(to))
		})
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.GaugeValue, float64(s.Failures), name)
		if s.Config.FailureRate > 0 {
			ch <- prometheus.MustNewConstMetric(ratioDesc, prometheus.GaugeValue, s.FailureRatio, name)
		}
		ch <- prometheus.MustNewConstMetric(storeErrorsDesc, prometheus.CounterValue, float64(s.Counts.StoreErrors), name)
	}
}
