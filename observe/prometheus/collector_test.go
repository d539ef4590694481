package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/observe/internal/exporttest"
	purgatoryprom "github.com/purgatory-go/purgatory/observe/prometheus"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

var (
	errDown     = errors.New("backend down")
	errNotFound = errors.New("not found")
)

// call makes one call through b that ends with err.
func call(b *purgatory.Breaker, err error) error {
	return b.Do(context.Background(), func(context.Context) error { return err })
}

// scenario makes a factory on a fake clock and plays a known history on it:
// "payments" trips, goes half-open, fails its trial, goes half-open again
// and recovers; "search" is a rate circuit (only the rate trips it, so it
// counts no consecutive failures) with some calls; "stock" is only
// created.
func scenario(t *testing.T) (*purgatory.Factory, *purgatoryprom.Collector) {
	t.Helper()
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock), purgatory.WithExclude(purgatory.Is(errNotFound)))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)

	pay := f.Breaker("payments", purgatory.Config{Threshold: 2, TTL: 10 * time.Second})
	require.NoError(t, call(pay, nil))
	require.NoError(t, call(pay, nil))
	require.ErrorIs(t, call(pay, errNotFound), errNotFound)
	require.ErrorIs(t, call(pay, errDown), errDown)
	require.ErrorIs(t, call(pay, errDown), errDown) // trips: closed -> open
	require.ErrorIs(t, call(pay, nil), purgatory.ErrOpen)
	require.ErrorIs(t, call(pay, nil), purgatory.ErrOpen)
	require.ErrorIs(t, call(pay, nil), purgatory.ErrOpen)
	clock.Advance(10 * time.Second)                 // open -> half-open
	require.ErrorIs(t, call(pay, errDown), errDown) // half-open -> open
	clock.Advance(10 * time.Second)                 // open -> half-open
	require.NoError(t, call(pay, nil))              // half-open -> closed
	require.ErrorIs(t, call(pay, errDown), errDown) // one consecutive failure
	require.Equal(t, purgatory.Closed, pay.State())

	search := f.Breaker("search", purgatory.Config{FailureRate: 0.5, Window: time.Minute, MinCalls: 10})
	for range 3 {
		require.NoError(t, call(search, nil))
	}
	require.ErrorIs(t, call(search, errDown), errDown)
	// The window's counts are merged (and the ratio computed) on a timer.
	clock.Advance(time.Minute / store.Buckets)
	require.Equal(t, 0.25, search.Status().FailureRatio)

	stock := f.Breaker("stock", purgatory.Config{})
	stock.Isolate()
	require.ErrorIs(t, call(stock, nil), purgatory.ErrOpen)
	return f, c
}

const wantExposition = `
# HELP purgatory_calls_total Calls through the circuit by outcome: success, failure, excluded (an excluded error, not a failure), rejected (not made: the circuit was open).
# TYPE purgatory_calls_total counter
purgatory_calls_total{circuit="payments",outcome="excluded"} 1
purgatory_calls_total{circuit="payments",outcome="failure"} 4
purgatory_calls_total{circuit="payments",outcome="rejected"} 3
purgatory_calls_total{circuit="payments",outcome="success"} 3
purgatory_calls_total{circuit="search",outcome="excluded"} 0
purgatory_calls_total{circuit="search",outcome="failure"} 1
purgatory_calls_total{circuit="search",outcome="rejected"} 0
purgatory_calls_total{circuit="search",outcome="success"} 3
purgatory_calls_total{circuit="stock",outcome="excluded"} 0
purgatory_calls_total{circuit="stock",outcome="failure"} 0
purgatory_calls_total{circuit="stock",outcome="rejected"} 1
purgatory_calls_total{circuit="stock",outcome="success"} 0
# HELP purgatory_circuit_consecutive_failures Consecutive failures of the closed circuit.
# TYPE purgatory_circuit_consecutive_failures gauge
purgatory_circuit_consecutive_failures{circuit="payments"} 1
purgatory_circuit_consecutive_failures{circuit="search"} 0
purgatory_circuit_consecutive_failures{circuit="stock"} 0
# HELP purgatory_circuit_failure_ratio Failed calls over calls in the circuit's rolling window (circuits with a failure-rate policy only).
# TYPE purgatory_circuit_failure_ratio gauge
purgatory_circuit_failure_ratio{circuit="search"} 0.25
# HELP purgatory_circuit_state State of the circuit: 1 for the current state, 0 for the others.
# TYPE purgatory_circuit_state gauge
purgatory_circuit_state{circuit="payments",state="closed"} 1
purgatory_circuit_state{circuit="payments",state="half_open"} 0
purgatory_circuit_state{circuit="payments",state="isolated"} 0
purgatory_circuit_state{circuit="payments",state="open"} 0
purgatory_circuit_state{circuit="search",state="closed"} 1
purgatory_circuit_state{circuit="search",state="half_open"} 0
purgatory_circuit_state{circuit="search",state="isolated"} 0
purgatory_circuit_state{circuit="search",state="open"} 0
purgatory_circuit_state{circuit="stock",state="closed"} 0
purgatory_circuit_state{circuit="stock",state="half_open"} 0
purgatory_circuit_state{circuit="stock",state="isolated"} 1
purgatory_circuit_state{circuit="stock",state="open"} 0
# HELP purgatory_circuits Circuits in each state, per keyed group (group="": circuits of no group).
# TYPE purgatory_circuits gauge
purgatory_circuits{group="",state="closed"} 2
purgatory_circuits{group="",state="half_open"} 0
purgatory_circuits{group="",state="isolated"} 1
purgatory_circuits{group="",state="open"} 0
# HELP purgatory_store_errors_total Failed operations on the circuit's state store.
# TYPE purgatory_store_errors_total counter
purgatory_store_errors_total{circuit="payments"} 0
purgatory_store_errors_total{circuit="search"} 0
purgatory_store_errors_total{circuit="stock"} 0
# HELP purgatory_transitions_total State changes of the circuit.
# TYPE purgatory_transitions_total counter
purgatory_transitions_total{circuit="payments",from="closed",to="open"} 1
purgatory_transitions_total{circuit="payments",from="half_open",to="closed"} 1
purgatory_transitions_total{circuit="payments",from="half_open",to="open"} 1
purgatory_transitions_total{circuit="payments",from="open",to="half_open"} 2
purgatory_transitions_total{circuit="search",from="closed",to="open"} 0
purgatory_transitions_total{circuit="search",from="half_open",to="closed"} 0
purgatory_transitions_total{circuit="search",from="half_open",to="open"} 0
purgatory_transitions_total{circuit="search",from="open",to="half_open"} 0
purgatory_transitions_total{circuit="stock",from="closed",to="isolated"} 1
purgatory_transitions_total{circuit="stock",from="closed",to="open"} 0
purgatory_transitions_total{circuit="stock",from="half_open",to="closed"} 0
purgatory_transitions_total{circuit="stock",from="half_open",to="open"} 0
purgatory_transitions_total{circuit="stock",from="open",to="half_open"} 0
`

// TestCollectorExposition compares the whole exposition of a known history
// with the exact expected text.
func TestCollectorExposition(t *testing.T) {
	_, c := scenario(t)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(wantExposition)))
	// The collector is a well-behaved one: consistent descriptors, no
	// duplicate series.
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestCollectorSeriesFromCreation checks that a circuit has all its series,
// at zero, as soon as it is created, before any call.
func TestCollectorSeriesFromCreation(t *testing.T) {
	f := purgatory.NewFactory()
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)
	require.Equal(t, 4, testutil.CollectAndCount(c)) // purgatory_circuits{group=""}

	f.Breaker("fresh", purgatory.Config{})
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP purgatory_calls_total Calls through the circuit by outcome: success, failure, excluded (an excluded error, not a failure), rejected (not made: the circuit was open).
# TYPE purgatory_calls_total counter
purgatory_calls_total{circuit="fresh",outcome="excluded"} 0
purgatory_calls_total{circuit="fresh",outcome="failure"} 0
purgatory_calls_total{circuit="fresh",outcome="rejected"} 0
purgatory_calls_total{circuit="fresh",outcome="success"} 0
# HELP purgatory_circuit_consecutive_failures Consecutive failures of the closed circuit.
# TYPE purgatory_circuit_consecutive_failures gauge
purgatory_circuit_consecutive_failures{circuit="fresh"} 0
# HELP purgatory_circuit_state State of the circuit: 1 for the current state, 0 for the others.
# TYPE purgatory_circuit_state gauge
purgatory_circuit_state{circuit="fresh",state="closed"} 1
purgatory_circuit_state{circuit="fresh",state="half_open"} 0
purgatory_circuit_state{circuit="fresh",state="isolated"} 0
purgatory_circuit_state{circuit="fresh",state="open"} 0
# HELP purgatory_circuits Circuits in each state, per keyed group (group="": circuits of no group).
# TYPE purgatory_circuits gauge
purgatory_circuits{group="",state="closed"} 1
purgatory_circuits{group="",state="half_open"} 0
purgatory_circuits{group="",state="isolated"} 0
purgatory_circuits{group="",state="open"} 0
# HELP purgatory_store_errors_total Failed operations on the circuit's state store.
# TYPE purgatory_store_errors_total counter
purgatory_store_errors_total{circuit="fresh"} 0
# HELP purgatory_transitions_total State changes of the circuit.
# TYPE purgatory_transitions_total counter
purgatory_transitions_total{circuit="fresh",from="closed",to="open"} 0
purgatory_transitions_total{circuit="fresh",from="half_open",to="closed"} 0
purgatory_transitions_total{circuit="fresh",from="half_open",to="open"} 0
purgatory_transitions_total{circuit="fresh",from="open",to="half_open"} 0
`)))
}

// TestCollectorScrapeHTTP serves the collector on a loopback port with
// promhttp and scrapes it as Prometheus would.
func TestCollectorScrapeHTTP(t *testing.T) {
	_, c := scenario(t)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"), srv.URL)

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	// promhttp writes the same text as the expected exposition, family by
	// family in name order.
	require.Equal(t, strings.TrimPrefix(wantExposition, "\n"), string(body))
}

// TestCollectorExactCounts makes n calls of each outcome from many
// goroutines at once (run it with -race) and reads exactly n of each.
func TestCollectorExactCounts(t *testing.T) {
	const goroutines, perGoroutine = 16, 500
	const n = goroutines * perGoroutine
	f := purgatory.NewFactory(purgatory.WithExclude(purgatory.Is(errNotFound)))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)

	// One circuit per outcome so that failures never trip the others; the
	// failing one has a threshold it cannot reach.
	ok := f.Breaker("ok", purgatory.Config{})
	failing := f.Breaker("failing", purgatory.Config{Threshold: 10 * n})
	excluded := f.Breaker("excluded", purgatory.Config{})
	rejecting := f.Breaker("rejecting", purgatory.Config{})
	rejecting.Isolate()

	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perGoroutine {
				_ = call(ok, nil)
				_ = call(failing, errDown)
				_ = call(excluded, errNotFound)
				_ = call(rejecting, nil)
			}
		}()
	}
	wg.Wait()

	want := func(circuit string, success, failure, excl, rejected int) string {
		return fmt.Sprintf(`purgatory_calls_total{circuit=%[1]q,outcome="excluded"} %[2]d
purgatory_calls_total{circuit=%[1]q,outcome="failure"} %[3]d
purgatory_calls_total{circuit=%[1]q,outcome="rejected"} %[4]d
purgatory_calls_total{circuit=%[1]q,outcome="success"} %[5]d
`, circuit, excl, failure, rejected, success)
	}
	expected := `# HELP purgatory_calls_total Calls through the circuit by outcome: success, failure, excluded (an excluded error, not a failure), rejected (not made: the circuit was open).
# TYPE purgatory_calls_total counter
` + want("excluded", 0, 0, n, 0) + want("failing", 0, n, 0, 0) + want("ok", n, 0, 0, 0) + want("rejecting", 0, 0, 0, n)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expected), "purgatory_calls_total"))
}

// TestCollectorRemovedCircuitIsForgotten removes a circuit, lets the removed
// breaker (still held by its caller) go on changing state, and re-creates
// the name: the new circuit starts from zero, and the removed one is not
// credited for what its breaker did after the removal.
func TestCollectorRemovedCircuitIsForgotten(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)

	old := f.Breaker("host", purgatory.Config{Threshold: 1, TTL: time.Second})
	require.ErrorIs(t, call(old, errDown), errDown) // closed -> open
	require.Equal(t, 14, testutil.CollectAndCount(c, "purgatory_circuit_state", "purgatory_calls_total",
		"purgatory_transitions_total", "purgatory_circuit_consecutive_failures", "purgatory_store_errors_total"))
	require.True(t, f.Remove("host"))
	clock.Advance(time.Second) // the removed breaker: open -> half-open
	require.Equal(t, purgatory.HalfOpen, old.State())
	require.Equal(t, 4, testutil.CollectAndCount(c)) // purgatory_circuits{group=""} alone
	require.NoError(t, call(old, nil))               // half-open -> closed

	f.Breaker("host", purgatory.Config{Threshold: 1, TTL: time.Second})
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP purgatory_transitions_total State changes of the circuit.
# TYPE purgatory_transitions_total counter
purgatory_transitions_total{circuit="host",from="closed",to="open"} 0
purgatory_transitions_total{circuit="host",from="half_open",to="closed"} 0
purgatory_transitions_total{circuit="host",from="half_open",to="open"} 0
purgatory_transitions_total{circuit="host",from="open",to="half_open"} 0
`), "purgatory_transitions_total"))
}

// TestCollectorKeepsNothingOfRemovedCircuits churns through circuits that
// are created, scraped, removed and then change state on their own, and
// checks that the collector keeps no memory for them.
func TestCollectorKeepsNothingOfRemovedCircuits(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)
	perCircuit := exporttest.HeapPerRemovedCircuit(f, clock, func() { testutil.CollectAndCount(c) })
	t.Logf("%.1f bytes per removed circuit stay on the heap", perCircuit)
	require.Less(t, perCircuit, 64.0) // 160-260 B leaked per circuit before
}

// groupScenario makes a factory with a plain circuit "db" and a keyed group
// "hosts" of three circuits: "a" trips (2 failures), "b" has 3 successes,
// "c" 1 success.
func groupScenario(t *testing.T, opts ...purgatoryprom.Option) (*purgatory.Factory, *purgatoryprom.Collector) {
	t.Helper()
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f, opts...)
	t.Cleanup(c.Close)
	f.Breaker("db", purgatory.Config{})
	hosts := f.Group("hosts", purgatory.Config{Threshold: 2})
	for range 2 {
		require.ErrorIs(t, call(hosts.Breaker("a"), errDown), errDown)
	}
	require.ErrorIs(t, call(hosts.Breaker("a"), nil), purgatory.ErrOpen)
	for range 3 {
		require.NoError(t, call(hosts.Breaker("b"), nil))
	}
	require.NoError(t, call(hosts.Breaker("c"), nil))
	return f, c
}

const wantGroups = `
# HELP purgatory_circuits Circuits in each state, per keyed group (group="": circuits of no group).
# TYPE purgatory_circuits gauge
purgatory_circuits{group="",state="closed"} 1
purgatory_circuits{group="",state="half_open"} 0
purgatory_circuits{group="",state="isolated"} 0
purgatory_circuits{group="",state="open"} 0
purgatory_circuits{group="hosts",state="closed"} 2
purgatory_circuits{group="hosts",state="half_open"} 0
purgatory_circuits{group="hosts",state="isolated"} 0
purgatory_circuits{group="hosts",state="open"} 1
# HELP purgatory_group_calls_total Calls through the circuits of a keyed group by outcome: success, failure, excluded, rejected; removed circuits included.
# TYPE purgatory_group_calls_total counter
purgatory_group_calls_total{group="hosts",outcome="excluded"} 0
purgatory_group_calls_total{group="hosts",outcome="failure"} 2
purgatory_group_calls_total{group="hosts",outcome="rejected"} 1
purgatory_group_calls_total{group="hosts",outcome="success"} 4
# HELP purgatory_group_store_errors_total Failed operations on the state store of the circuits of a keyed group; removed circuits included.
# TYPE purgatory_group_store_errors_total counter
purgatory_group_store_errors_total{group="hosts"} 0
# HELP purgatory_group_transitions_total State changes of the circuits of a keyed group; removed circuits included.
# TYPE purgatory_group_transitions_total counter
purgatory_group_transitions_total{from="closed",group="hosts",to="open"} 1
purgatory_group_transitions_total{from="half_open",group="hosts",to="closed"} 0
purgatory_group_transitions_total{from="half_open",group="hosts",to="open"} 0
purgatory_group_transitions_total{from="open",group="hosts",to="half_open"} 0
`

// TestCollectorGroups checks that by default the circuits of a keyed group
// are exported per group only, and plain circuits per circuit.
func TestCollectorGroups(t *testing.T) {
	_, c := groupScenario(t)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(wantGroups),
		"purgatory_circuits", "purgatory_group_calls_total", "purgatory_group_transitions_total", "purgatory_group_store_errors_total"))
	// Per-circuit series: the plain circuit only.
	require.Equal(t, 4, testutil.CollectAndCount(c, "purgatory_circuit_state"))
	require.Equal(t, 14+4+13, testutil.CollectAndCount(c))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestCollectorPerKeySeries asks for per-key series: the group's circuits
// get the per-circuit series too, beside the group's.
func TestCollectorPerKeySeries(t *testing.T) {
	for _, opt := range []purgatoryprom.Option{purgatoryprom.WithPerKeySeries(), purgatoryprom.WithPerKeySeries("hosts")} {
		_, c := groupScenario(t, opt)
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(wantGroups),
			"purgatory_circuits", "purgatory_group_calls_total", "purgatory_group_transitions_total", "purgatory_group_store_errors_total"))
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP purgatory_calls_total Calls through the circuit by outcome: success, failure, excluded (an excluded error, not a failure), rejected (not made: the circuit was open).
# TYPE purgatory_calls_total counter
purgatory_calls_total{circuit="db",outcome="excluded"} 0
purgatory_calls_total{circuit="db",outcome="failure"} 0
purgatory_calls_total{circuit="db",outcome="rejected"} 0
purgatory_calls_total{circuit="db",outcome="success"} 0
purgatory_calls_total{circuit="hosts/a",outcome="excluded"} 0
purgatory_calls_total{circuit="hosts/a",outcome="failure"} 2
purgatory_calls_total{circuit="hosts/a",outcome="rejected"} 1
purgatory_calls_total{circuit="hosts/a",outcome="success"} 0
purgatory_calls_total{circuit="hosts/b",outcome="excluded"} 0
purgatory_calls_total{circuit="hosts/b",outcome="failure"} 0
purgatory_calls_total{circuit="hosts/b",outcome="rejected"} 0
purgatory_calls_total{circuit="hosts/b",outcome="success"} 3
purgatory_calls_total{circuit="hosts/c",outcome="excluded"} 0
purgatory_calls_total{circuit="hosts/c",outcome="failure"} 0
purgatory_calls_total{circuit="hosts/c",outcome="rejected"} 0
purgatory_calls_total{circuit="hosts/c",outcome="success"} 1
`), "purgatory_calls_total"))
		require.Equal(t, 4*14+4+13, testutil.CollectAndCount(c))
	}
	// Another group named: "hosts" stays per group.
	_, c := groupScenario(t, purgatoryprom.WithPerKeySeries("other"))
	require.Equal(t, 14+4+13, testutil.CollectAndCount(c))
}

// TestCollectorGroupSeriesCount checks the series count the package
// documents: 13 per group, whatever its number of circuits.
func TestCollectorGroupSeriesCount(t *testing.T) {
	f := purgatory.NewFactory()
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)
	g := f.Group("tenants", purgatory.Config{})
	for _, n := range []int{1, 10, 1000} {
		for i := range n {
			g.Breaker(fmt.Sprint(i))
		}
		require.Equal(t, 4+13, testutil.CollectAndCount(c), "%d circuits", n)
	}
}

// TestCollectorGroupCountersSurviveRemoval removes circuits of a group (as
// idle eviction does): the group's counters keep their counts and never go
// down; its state counts follow the circuits present.
func TestCollectorGroupCountersSurviveRemoval(t *testing.T) {
	f, c := groupScenario(t)
	require.True(t, f.Remove("hosts/a"))
	require.True(t, f.Remove("hosts/b"))
	hosts := f.Group("hosts", purgatory.Config{Threshold: 2})
	require.NoError(t, call(hosts.Breaker("b"), nil)) // b again, afresh
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP purgatory_circuits Circuits in each state, per keyed group (group="": circuits of no group).
# TYPE purgatory_circuits gauge
purgatory_circuits{group="",state="closed"} 1
purgatory_circuits{group="",state="half_open"} 0
purgatory_circuits{group="",state="isolated"} 0
purgatory_circuits{group="",state="open"} 0
purgatory_circuits{group="hosts",state="closed"} 2
purgatory_circuits{group="hosts",state="half_open"} 0
purgatory_circuits{group="hosts",state="isolated"} 0
purgatory_circuits{group="hosts",state="open"} 0
# HELP purgatory_group_calls_total Calls through the circuits of a keyed group by outcome: success, failure, excluded, rejected; removed circuits included.
# TYPE purgatory_group_calls_total counter
purgatory_group_calls_total{group="hosts",outcome="excluded"} 0
purgatory_group_calls_total{group="hosts",outcome="failure"} 2
purgatory_group_calls_total{group="hosts",outcome="rejected"} 1
purgatory_group_calls_total{group="hosts",outcome="success"} 5
# HELP purgatory_group_transitions_total State changes of the circuits of a keyed group; removed circuits included.
# TYPE purgatory_group_transitions_total counter
purgatory_group_transitions_total{from="closed",group="hosts",to="open"} 1
purgatory_group_transitions_total{from="half_open",group="hosts",to="closed"} 0
purgatory_group_transitions_total{from="half_open",group="hosts",to="open"} 0
purgatory_group_transitions_total{from="open",group="hosts",to="half_open"} 0
`), "purgatory_circuits", "purgatory_group_calls_total", "purgatory_group_transitions_total"))

	// Every circuit of the group removed: its series stay, at their counts.
	require.True(t, f.Remove("hosts/b"))
	require.True(t, f.Remove("hosts/c"))
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP purgatory_group_calls_total Calls through the circuits of a keyed group by outcome: success, failure, excluded, rejected; removed circuits included.
# TYPE purgatory_group_calls_total counter
purgatory_group_calls_total{group="hosts",outcome="excluded"} 0
purgatory_group_calls_total{group="hosts",outcome="failure"} 2
purgatory_group_calls_total{group="hosts",outcome="rejected"} 1
purgatory_group_calls_total{group="hosts",outcome="success"} 5
`), "purgatory_group_calls_total"))
}

// TestCollectorGroupEviction lets a group's idle circuits be evicted: the
// group's calls stay counted, its state counts go to zero.
func TestCollectorGroupEviction(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)
	g := f.Group("tenants", purgatory.Config{}, purgatory.WithIdleTimeout(time.Minute))
	for i := range 100 {
		require.NoError(t, call(g.Breaker(fmt.Sprint(i)), nil))
	}
	clock.Advance(3 * time.Minute)
	require.Zero(t, g.Len())
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP purgatory_circuits Circuits in each state, per keyed group (group="": circuits of no group).
# TYPE purgatory_circuits gauge
purgatory_circuits{group="",state="closed"} 0
purgatory_circuits{group="",state="half_open"} 0
purgatory_circuits{group="",state="isolated"} 0
purgatory_circuits{group="",state="open"} 0
purgatory_circuits{group="tenants",state="closed"} 0
purgatory_circuits{group="tenants",state="half_open"} 0
purgatory_circuits{group="tenants",state="isolated"} 0
purgatory_circuits{group="tenants",state="open"} 0
# HELP purgatory_group_calls_total Calls through the circuits of a keyed group by outcome: success, failure, excluded, rejected; removed circuits included.
# TYPE purgatory_group_calls_total counter
purgatory_group_calls_total{group="tenants",outcome="excluded"} 0
purgatory_group_calls_total{group="tenants",outcome="failure"} 0
purgatory_group_calls_total{group="tenants",outcome="rejected"} 0
purgatory_group_calls_total{group="tenants",outcome="success"} 100
`), "purgatory_circuits", "purgatory_group_calls_total"))
}

// TestCollectorGroupCountersNeverGoDown scrapes while circuits of a group
// are called, removed and made again from other goroutines (run it with
// -race): no group counter ever goes down.
func TestCollectorGroupCountersNeverGoDown(t *testing.T) {
	f := purgatory.NewFactory()
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)
	g := f.Group("hosts", purgatory.Config{Threshold: 1_000_000})
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rounds atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprint(w, "-", i%8)
				_ = call(g.Breaker(key), nil)
				_ = call(g.Breaker(key), errDown)
				if i%3 == 0 {
					f.Remove("hosts/" + key)
				}
				rounds.Add(1)
			}
		}()
	}
	last := map[string]float64{}
	// At least 50 scrapes, and until the workers have made 100 rounds of
	// calls and removals: on a busy machine they may not have started
	// before 50 scrapes are done.
	for i := 0; i < 50 || rounds.Load() < 100; i++ {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "purgatory_group_calls_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				key := m.GetLabel()[1].GetValue() // outcome
				v := m.GetCounter().GetValue()
				require.GreaterOrEqual(t, v, last[key], key)
				last[key] = v
			}
		}
	}
	close(stop)
	wg.Wait()
	require.Positive(t, last["success"], "group successes after %d rounds of calls", rounds.Load())
}

// TestCollectorGroupCountersHoldWhileARemovalIsDelivered scrapes between a
// removal and the delivery of its event (another listener holds it): the
// circuit is gone from the factory and its counts are not yet in its
// group's, yet the group's counters do not go down.
func TestCollectorGroupCountersHoldWhileARemovalIsDelivered(t *testing.T) {
	removing, release := make(chan struct{}), make(chan struct{})
	f := purgatory.NewFactory(purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind == purgatory.EventRemoved {
			close(removing)
			<-release
		}
	})))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f) // its listener comes after the one above
	t.Cleanup(c.Close)
	g := f.Group("hosts", purgatory.Config{})
	for range 3 {
		require.NoError(t, call(g.Breaker("a"), nil))
	}
	require.NoError(t, call(g.Breaker("b"), nil))
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	successes := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "purgatory_group_calls_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[1].GetValue() == "success" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		t.Fatal("no purgatory_group_calls_total{outcome=\"success\"}")
		return 0
	}
	require.Equal(t, 4.0, successes())

	removed := make(chan bool)
	go func() { removed <- f.Remove("hosts/a") }()
	<-removing
	_, present := f.Lookup("hosts/a")
	require.False(t, present)
	require.Equal(t, 4.0, successes()) // 1 without the held count
	close(release)
	require.True(t, <-removed)
	require.Equal(t, 4.0, successes())
	require.NoError(t, call(g.Breaker("b"), nil))
	require.Equal(t, 5.0, successes())
}

// TestCollectorWorstKeys gives per-circuit series to the circuits of a
// group in the most trouble only: open first, then by consecutive
// failures, never a healthy one.
func TestCollectorWorstKeys(t *testing.T) {
	circuitsWithSeries := func(c *purgatoryprom.Collector) []string {
		reg := prometheus.NewRegistry()
		require.NoError(t, reg.Register(c))
		mfs, err := reg.Gather()
		require.NoError(t, err)
		var names []string
		for _, mf := range mfs {
			if mf.GetName() == "purgatory_circuit_consecutive_failures" {
				for _, m := range mf.GetMetric() {
					names = append(names, m.GetLabel()[0].GetValue())
				}
			}
		}
		return names
	}
	for n, want := range map[int][]string{
		1:  {"db", "hosts/a"},
		2:  {"db", "hosts/a", "hosts/b"},
		10: {"db", "hosts/a", "hosts/b", "hosts/c"},
	} {
		f := purgatory.NewFactory()
		t.Cleanup(func() { _ = f.Close() })
		c := purgatoryprom.NewCollector(f, purgatoryprom.WithWorstKeys(n))
		t.Cleanup(c.Close)
		f.Breaker("db", purgatory.Config{})
		hosts := f.Group("hosts", purgatory.Config{Threshold: 3})
		hosts.Breaker("a").Open()
		for range 2 {
			require.ErrorIs(t, call(hosts.Breaker("b"), errDown), errDown)
		}
		require.ErrorIs(t, call(hosts.Breaker("c"), errDown), errDown)
		require.NoError(t, call(hosts.Breaker("d"), nil))
		hosts.Breaker("e")
		require.Equal(t, want, circuitsWithSeries(c), "worst %d", n)
		require.Equal(t, 14*len(want)+4+13, testutil.CollectAndCount(c), "worst %d", n)
	}
}
