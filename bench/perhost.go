package bench

import (
	"errors"
	"net/http"
	"sync"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/purgatory-go/purgatory/httpcircuit"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/sony/gobreaker/v2"
)

// The per-host HTTP round trip: each contender is an http.RoundTripper
// with one circuit per host (5 consecutive failures — transport errors,
// 5xx, 429 — open it for OpenFor), over a base transport that does no I/O.

// NopTransport answers every request with the same response, allocating
// nothing: the base transport of the per-host benchmarks.
type NopTransport struct{ Resp *http.Response }

// RoundTrip returns t.Resp.
func (t NopTransport) RoundTrip(*http.Request) (*http.Response, error) { return t.Resp, nil }

// HostContender is one way of giving each host a circuit.
type HostContender struct {
	Name string
	// New returns a round tripper over base with a circuit per host.
	New func(base http.RoundTripper) http.RoundTripper
	// Open opens the circuit of host in rt, made by New.
	Open func(rt http.RoundTripper, host string)
	// Note says how the contender is put together.
	Note string
}

// failedStatus reports whether an answer counts as a failure: every
// contender classifies as httpcircuit.Classify does.
func failedStatus(resp *http.Response) bool { return httpcircuit.Classify(resp, nil) != nil }

var errStatus = errors.New("bench: failed status")

// HostContenders are the per-host contenders; the first is the base
// transport alone.
var HostContenders = []HostContender{
	{
		Name: "direct",
		New:  func(base http.RoundTripper) http.RoundTripper { return base },
		Note: "the base transport alone",
	},
	{
		Name: "purgatory-httpcircuit",
		New: func(base http.RoundTripper) http.RoundTripper {
			return httpcircuit.New(base, purgatory.NewFactory(), httpcircuit.WithConfig(purgatory.Config{Threshold: Threshold, TTL: OpenFor}))
		},
		Open: func(rt http.RoundTripper, host string) { rt.(*httpcircuit.Transport).Breaker(host).Open() },
		Note: "httpcircuit.New: a keyed Group, one circuit per host",
	},
	{
		Name: "purgatory-static",
		New: func(base http.RoundTripper) http.RoundTripper {
			return &staticTransport{base: base,
				b: purgatory.NewFactory().Breaker("http", purgatory.Config{Threshold: Threshold, TTL: OpenFor})}
		},
		Open: func(rt http.RoundTripper, _ string) { rt.(*staticTransport).b.Open() },
		Note: "not per host: one circuit for every host, the same Allow/Done/Classify as httpcircuit — its difference to purgatory-httpcircuit is the per-host lookup",
	},
	{
		Name: "failsafehttp-syncmap",
		New: func(base http.RoundTripper) http.RoundTripper {
			return &failsafePerHost{base: base}
		},
		Open: func(rt http.RoundTripper, host string) { rt.(*failsafePerHost).get(host).cb.Open() },
		Note: "failsafehttp.NewRoundTripper per host, in a sync.Map (failsafehttp has no per-host circuits)",
	},
	{
		Name: "gobreaker-syncmap",
		New: func(base http.RoundTripper) http.RoundTripper {
			return &gobreakerPerHost{base: base}
		},
		Open: func(rt http.RoundTripper, host string) {
			g := rt.(*gobreakerPerHost)
			cb := g.get(host)
			for cb.State() != gobreaker.StateOpen {
				_, _ = cb.Execute(func() (*http.Response, error) { return nil, errStatus })
			}
		},
		Note: "a sync.Map of gobreaker breakers, the glue users write today",
	},
}

// failsafePerHost keeps a failsafehttp round tripper per host.
type failsafePerHost struct {
	base  http.RoundTripper
	hosts sync.Map // host -> *failsafeHost
}

type failsafeHost struct {
	rt http.RoundTripper
	cb circuitbreaker.CircuitBreaker[*http.Response]
}

func (f *failsafePerHost) get(host string) *failsafeHost {
	if v, ok := f.hosts.Load(host); ok {
		return v.(*failsafeHost)
	}
	cb := circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(func(resp *http.Response, err error) bool { return err != nil || failedStatus(resp) }).
		WithFailureThreshold(uint(Threshold)).
		WithDelay(OpenFor).
		Build()
	h := &failsafeHost{rt: failsafehttp.NewRoundTripper(f.base, cb), cb: cb}
	v, _ := f.hosts.LoadOrStore(host, h)
	return v.(*failsafeHost)
}

func (f *failsafePerHost) RoundTrip(req *http.Request) (*http.Response, error) {
	return f.get(req.URL.Host).rt.RoundTrip(req)
}

// gobreakerPerHost keeps a gobreaker breaker per host.
type gobreakerPerHost struct {
	base  http.RoundTripper
	hosts sync.Map // host -> *gobreaker.CircuitBreaker[*http.Response]
}

func (g *gobreakerPerHost) get(host string) *gobreaker.CircuitBreaker[*http.Response] {
	if v, ok := g.hosts.Load(host); ok {
		return v.(*gobreaker.CircuitBreaker[*http.Response])
	}
	cb := gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:    host,
		Timeout: OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(Threshold)
		},
	})
	v, _ := g.hosts.LoadOrStore(host, cb)
	return v.(*gobreaker.CircuitBreaker[*http.Response])
}

func (g *gobreakerPerHost) RoundTrip(req *http.Request) (*http.Response, error) {
	var answer *http.Response
	resp, err := g.get(req.URL.Host).Execute(func() (*http.Response, error) {
		resp, err := g.base.RoundTrip(req)
		if err == nil && failedStatus(resp) {
			answer = resp
			return resp, errStatus // counted as a failure; the caller gets the answer
		}
		return resp, err
	})
	if errors.Is(err, errStatus) {
		return answer, nil
	}
	return resp, err
}

// staticTransport guards every request with one circuit, as httpcircuit
// does per host: the baseline of the per-host lookup's cost.
type staticTransport struct {
	base http.RoundTripper
	b    *purgatory.Breaker
}

func (t *staticTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tok, err := t.b.Allow(ctx)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			t.b.Done(ctx, tok, purgatory.ErrPanicked)
		}
	}()
	resp, err := t.base.RoundTrip(req)
	done = true
	t.b.Done(ctx, tok, httpcircuit.Classify(resp, err))
	return resp, err
}
