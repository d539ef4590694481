package otel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/purgatory-go/purgatory/observe/internal/exporttest"
	purgatoryotel "github.com/purgatory-go/purgatory/observe/otel"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

var errDown = errors.New("down")

func call(b *purgatory.Breaker, err error) error {
	return b.Do(context.Background(), func(context.Context) error { return err })
}

func ip(v int64, kv ...string) metricdata.DataPoint[int64] {
	var attrs []attribute.KeyValue
	for i := 0; i < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attrs...), Value: v}
}

// TestInstruments collects with the SDK's manual reader after a known
// history and compares every instrument with the exact expected data.
func TestInstruments(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	reg, err := purgatoryotel.Register(f, mp)
	require.NoError(t, err)

	pay := f.Breaker("payments", purgatory.Config{Threshold: 2, TTL: 10 * time.Second})
	require.NoError(t, call(pay, nil))
	require.ErrorIs(t, call(pay, errDown), errDown)
	require.ErrorIs(t, call(pay, errDown), errDown) // closed -> open
	require.ErrorIs(t, call(pay, nil), purgatory.ErrOpen)
	clock.Advance(10 * time.Second) // open -> half-open
	search := f.Breaker("search", purgatory.Config{FailureRate: 0.5, Window: time.Minute, MinCalls: 10})
	require.NoError(t, call(search, nil))
	require.ErrorIs(t, call(search, errDown), errDown)
	clock.Advance(time.Minute / 10) // the window's counts are merged
	require.Equal(t, purgatory.HalfOpen, pay.State())

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	require.Equal(t, purgatoryotel.ScopeName, rm.ScopeMetrics[0].Scope.Name)

	states := func(circuit, current string) []metricdata.DataPoint[int64] {
		var dps []metricdata.DataPoint[int64]
		for _, s := range []string{"closed", "open", "half_open", "isolated"} {
			v := int64(0)
			if s == current {
				v = 1
			}
			dps = append(dps, ip(v, "circuit", circuit, "state", s))
		}
		return dps
	}
	want := metricdata.ScopeMetrics{
		Scope: rm.ScopeMetrics[0].Scope,
		Metrics: []metricdata.Metrics{
			{
				Name: "purgatory.circuit.state", Unit: "1", Description: "State of the circuit: 1 for the current state, 0 for the others.",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: false,
					DataPoints: append(states("payments", "half_open"), states("search", "closed")...)},
			},
			{
				Name: "purgatory.calls", Unit: "{call}", Description: "Calls through the circuit by outcome: success, failure, excluded, rejected.",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: []metricdata.DataPoint[int64]{
					ip(1, "circuit", "payments", "outcome", "success"),
					ip(2, "circuit", "payments", "outcome", "failure"),
					ip(0, "circuit", "payments", "outcome", "excluded"),
					ip(1, "circuit", "payments", "outcome", "rejected"),
					ip(1, "circuit", "search", "outcome", "success"),
					ip(1, "circuit", "search", "outcome", "failure"),
					ip(0, "circuit", "search", "outcome", "excluded"),
					ip(0, "circuit", "search", "outcome", "rejected"),
				}},
			},
			{
				Name: "purgatory.transitions", Unit: "{transition}", Description: "State changes of the circuit.",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: []metricdata.DataPoint[int64]{
					ip(1, "circuit", "payments", "from", "closed", "to", "open"),
					ip(1, "circuit", "payments", "from", "open", "to", "half_open"),
					ip(0, "circuit", "payments", "from", "half_open", "to", "closed"),
					ip(0, "circuit", "payments", "from", "half_open", "to", "open"),
					ip(0, "circuit", "search", "from", "closed", "to", "open"),
					ip(0, "circuit", "search", "from", "open", "to", "half_open"),
					ip(0, "circuit", "search", "from", "half_open", "to", "closed"),
					ip(0, "circuit", "search", "from", "half_open", "to", "open"),
				}},
			},
			{
				Name: "purgatory.circuit.consecutive_failures", Unit: "{failure}", Description: "Consecutive failures of the closed circuit.",
				Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
					ip(0, "circuit", "payments"), ip(0, "circuit", "search"), // counted while closed only
				}},
			},
			{
				Name: "purgatory.circuit.failure_ratio", Unit: "1", Description: "Failed calls over calls in the circuit's rolling window (circuits with a failure-rate policy only).",
				Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{
					{Attributes: attribute.NewSet(attribute.String("circuit", "search")), Value: 0.5},
				}},
			},
			{
				Name: "purgatory.store.errors", Unit: "{error}", Description: "Failed operations on the circuit's state store.",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: []metricdata.DataPoint[int64]{
					ip(0, "circuit", "payments"), ip(0, "circuit", "search"),
				}},
			},
			{
				Name: "purgatory.circuits", Unit: "{circuit}", Description: "Circuits in each state, per keyed group (group \"\": circuits of no group).",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: false, DataPoints: []metricdata.DataPoint[int64]{
					ip(1, "group", "", "state", "closed"), ip(0, "group", "", "state", "open"),
					ip(1, "group", "", "state", "half_open"), ip(0, "group", "", "state", "isolated"),
				}},
			},
		},
	}
	metricdatatest.AssertEqual(t, want, rm.ScopeMetrics[0], metricdatatest.IgnoreTimestamp())

	// After Unregister nothing more is observed.
	require.NoError(t, reg.Unregister())
	rm = metricdata.ResourceMetrics{}
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				require.Empty(t, d.DataPoints, m.Name)
			case metricdata.Gauge[int64]:
				require.Empty(t, d.DataPoints, m.Name)
			case metricdata.Gauge[float64]:
				require.Empty(t, d.DataPoints, m.Name)
			}
		}
	}
}

// collect reads every instrument once.
func collect(t *testing.T, reader sdkmetric.Reader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	return rm
}

// points returns the int64 data points of the named instrument.
func points(rm metricdata.ResourceMetrics, name string) []metricdata.DataPoint[int64] {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				return d.DataPoints
			case metricdata.Gauge[int64]:
				return d.DataPoints
			}
		}
	}
	return nil
}

// TestRemovedCircuitIsForgotten removes a circuit, lets the removed breaker
// (still held by its caller) go on changing state, and re-creates the
// name: the new circuit starts from zero.
func TestRemovedCircuitIsForgotten(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	reg, err := purgatoryotel.Register(f, mp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })

	old := f.Breaker("host", purgatory.Config{Threshold: 1, TTL: time.Second})
	require.ErrorIs(t, call(old, errDown), errDown) // closed -> open
	require.Len(t, points(collect(t, reader), "purgatory.transitions"), 4)
	require.True(t, f.Remove("host"))
	clock.Advance(time.Second) // the removed breaker: open -> half-open
	require.Empty(t, points(collect(t, reader), "purgatory.transitions"))
	require.NoError(t, call(old, nil)) // half-open -> closed

	f.Breaker("host", purgatory.Config{Threshold: 1, TTL: time.Second})
	metricdatatest.AssertEqual(t, metricdata.Sum[int64]{
		Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
		DataPoints: []metricdata.DataPoint[int64]{
			ip(0, "circuit", "host", "from", "closed", "to", "open"),
			ip(0, "circuit", "host", "from", "open", "to", "half_open"),
			ip(0, "circuit", "host", "from", "half_open", "to", "closed"),
			ip(0, "circuit", "host", "from", "half_open", "to", "open"),
		},
	}, metricdata.Sum[int64]{
		Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
		DataPoints: points(collect(t, reader), "purgatory.transitions"),
	}, metricdatatest.IgnoreTimestamp())
}

// TestKeepsNothingOfRemovedCircuits churns through circuits that are
// created, collected, removed and then change state on their own, and
// checks that no memory stays for them (the SDK's included).
func TestKeepsNothingOfRemovedCircuits(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	reg, err := purgatoryotel.Register(f, mp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })
	perCircuit := exporttest.HeapPerRemovedCircuit(f, clock, func() { collect(t, reader) })
	t.Logf("%.1f bytes per removed circuit stay on the heap", perCircuit)
	require.Less(t, perCircuit, 64.0) // 160-260 B leaked per circuit before
}

// TestGroups checks that the circuits of a keyed group are observed per
// group by default, per key too with WithPerKey, and that a group's
// counters keep the counts of its removed circuits.
func TestGroups(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		f := purgatory.NewFactory()
		t.Cleanup(func() { _ = f.Close() })
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		var opts []purgatoryotel.Option
		if perKey {
			opts = append(opts, purgatoryotel.WithPerKey("hosts"))
		}
		reg, err := purgatoryotel.Register(f, mp, opts...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Unregister() })

		f.Breaker("db", purgatory.Config{})
		hosts := f.Group("hosts", purgatory.Config{Threshold: 1})
		require.ErrorIs(t, call(hosts.Breaker("a"), errDown), errDown) // a: closed -> open
		require.NoError(t, call(hosts.Breaker("b"), nil))
		require.NoError(t, call(hosts.Breaker("c"), nil))
		require.True(t, f.Remove("hosts/c"))

		rm := collect(t, reader)
		sum := func(dps []metricdata.DataPoint[int64]) metricdata.Sum[int64] {
			return metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: dps}
		}
		metricdatatest.AssertEqual(t, sum([]metricdata.DataPoint[int64]{
			ip(2, "group", "hosts", "outcome", "success"), ip(1, "group", "hosts", "outcome", "failure"),
			ip(0, "group", "hosts", "outcome", "excluded"), ip(0, "group", "hosts", "outcome", "rejected"),
		}), sum(points(rm, "purgatory.group.calls")), metricdatatest.IgnoreTimestamp())
		metricdatatest.AssertEqual(t, sum([]metricdata.DataPoint[int64]{
			ip(1, "group", "hosts", "from", "closed", "to", "open"), ip(0, "group", "hosts", "from", "open", "to", "half_open"),
			ip(0, "group", "hosts", "from", "half_open", "to", "closed"), ip(0, "group", "hosts", "from", "half_open", "to", "open"),
		}), sum(points(rm, "purgatory.group.transitions")), metricdatatest.IgnoreTimestamp())
		metricdatatest.AssertEqual(t, sum([]metricdata.DataPoint[int64]{ip(0, "group", "hosts")}),
			sum(points(rm, "purgatory.group.store.errors")), metricdatatest.IgnoreTimestamp())
		circuits := points(rm, "purgatory.circuits")
		require.Len(t, circuits, 8)
		for _, dp := range circuits {
			g, _ := dp.Attributes.Value("group")
			s, _ := dp.Attributes.Value("state")
			want := map[string]int64{"/closed": 1, "hosts/closed": 1, "hosts/open": 1}[g.AsString()+"/"+s.AsString()]
			require.Equal(t, want, dp.Value, "group %q state %q", g.AsString(), s.AsString())
		}
		// Per-circuit points: "db", and "hosts/a", "hosts/b" with WithPerKey.
		if perKey {
			require.Len(t, points(rm, "purgatory.calls"), 3*4)
		} else {
			require.Len(t, points(rm, "purgatory.calls"), 4)
		}
	}
}

// TestWorstKeys gives per-circuit data points to the group's circuit in
// the most trouble only.
func TestWorstKeys(t *testing.T) {
	f := purgatory.NewFactory()
	t.Cleanup(func() { _ = f.Close() })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	reg, err := purgatoryotel.Register(f, mp, purgatoryotel.WithWorstKeys(1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })
	hosts := f.Group("hosts", purgatory.Config{Threshold: 3})
	require.ErrorIs(t, call(hosts.Breaker("a"), errDown), errDown)
	hosts.Breaker("b").Open()
	require.NoError(t, call(hosts.Breaker("c"), nil))
	var circuits []string
	for _, dp := range points(collect(t, reader), "purgatory.circuit.consecutive_failures") {
		v, _ := dp.Attributes.Value("circuit")
		circuits = append(circuits, v.AsString())
	}
	require.Equal(t, []string{"hosts/b"}, circuits)
}
