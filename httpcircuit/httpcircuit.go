// Package httpcircuit guards HTTP clients with purgatory circuit breakers:
// an [http.RoundTripper] with one circuit per host, and [Classify], the
// result classifier it uses, which generated wrappers take as
// result=httpcircuit.Classify.
//
//	client := &http.Client{Transport: httpcircuit.New(nil, nil)}
//	resp, err := client.Get("https://api.example.com/v1/items")
//	if errors.Is(err, purgatory.ErrOpen) {
//		// api.example.com failed repeatedly: not called, try later
//	}
//
// The circuits are a [purgatory.Group] of the factory, named
// "<prefix>/<host>" with the URL's host as written: "http/api.example.com",
// or "http/127.0.0.1:8080" when the URL names a port. They show up in
// listeners, exporters, the status page and a shared store like any other
// circuit; with the Redis store, every process shares each host's circuit.
package httpcircuit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// DefaultPrefix is the name of the circuit group of a Transport made
// without [WithPrefix].
const DefaultPrefix = "http"

// Option configures a [Transport].
type Option func(*Transport)

// WithKey sets the function that picks a request's circuit (default
// [Host]). Requests with the same key share a circuit, named
// "<prefix>/<key>"; see [purgatory.Group.Breaker] for keys that are empty,
// long or odd.
func WithKey(key func(*http.Request) string) Option {
	return func(t *Transport) { t.key = key }
}

// WithClassifier sets the function that maps a round trip's results to
// the error the breaker counts: nil is a success (default [Classify]).
// The caller always gets the round trip's own results.
func WithClassifier(classify func(*http.Response, error) error) Option {
	return func(t *Transport) { t.classify = classify }
}

// WithConfig sets the configuration of every host's circuit (zero fields
// take the factory's defaults).
func WithConfig(cfg purgatory.Config) Option {
	return func(t *Transport) { t.cfg = cfg }
}

// WithPrefix sets the name of the circuit group (default [DefaultPrefix]):
// circuits are named "<prefix>/<key>". Transports of one factory with the
// same prefix share their circuits.
func WithPrefix(prefix string) Option {
	return func(t *Transport) { t.prefix = prefix }
}

// WithGroupOptions passes options to the circuit group: how many hosts
// it keeps circuits for ([purgatory.WithMaxKeys]) and how soon an idle
// host's circuit goes ([purgatory.WithIdleTimeout]).
func WithGroupOptions(opts ...purgatory.GroupOption) Option {
	return func(t *Transport) { t.groupOpts = append(t.groupOpts, opts...) }
}

// WithRetryAfter says whether a 429 or 503 answer with a Retry-After header
// opens the host's circuit for that long (default true); see [Transport].
func WithRetryAfter(honour bool) Option {
	return func(t *Transport) { t.retryAfter = honour }
}

// Transport is an [http.RoundTripper] that sends each request through the
// circuit of its host (or of its [WithKey] key), made on first use.
//
// A request whose circuit is open is not sent: RoundTrip closes its body,
// as the RoundTripper contract asks, and returns the circuit's
// [*purgatory.OpenError], so that errors.Is(err, purgatory.ErrOpen) holds
// on the *url.Error an [http.Client] returns. Otherwise the base
// transport's results are returned as they are, and the classifier
// ([Classify] unless [WithClassifier]) says what the breaker counts. The
// request's context is the call's: a request its caller cancelled counts
// as neither success nor failure; one that ran out of time (the client's
// Timeout, a deadline) is a failure.
//
// Retry-After. A 429 or 503 answer with a Retry-After header, in seconds
// or as an HTTP date, in the future, opens the host's circuit for that
// long ([purgatory.Breaker.OpenFor]), at most the circuit's longest open
// period: max(TTL, MaxTTL) of its configuration (30s with the factory's
// defaults; set Config.MaxTTL to honour longer hints). A value that is
// neither, or not in the future, is ignored, and the answer counts as any
// other failure.
//
// Idle hosts. A host's circuit is made on its first request and dropped
// once no request went to the host for the group's idle timeout
// ([purgatory.DefaultIdleTimeout] unless set with WithGroupOptions) and
// the circuit is at rest (not open, no trial in flight: see
// [purgatory.Group]); at most [purgatory.DefaultMaxKeys] hosts have
// circuits at once.
//
// Sending a request whose circuit is closed costs one lock-free lookup
// and allocates nothing beyond what the base transport does.
type Transport struct {
	base       http.RoundTripper
	factory    *purgatory.Factory
	key        func(*http.Request) string
	classify   func(*http.Response, error) error
	cfg        purgatory.Config
	prefix     string
	groupOpts  []purgatory.GroupOption
	retryAfter bool
	group      *purgatory.Group
}

// New returns a Transport that sends requests with base
// ([http.DefaultTransport] if nil) through circuits of factory
// ([purgatory.Default] if nil). It panics if an option gives a nil
// function or an empty prefix, or if the Config is out of range.
func New(base http.RoundTripper, factory *purgatory.Factory, opts ...Option) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	if factory == nil {
		factory = purgatory.Default()
	}
	t := &Transport{base: base, factory: factory, key: Host, classify: Classify, prefix: DefaultPrefix, retryAfter: true}
	for _, o := range opts {
		o(t)
	}
	switch {
	case t.key == nil:
		panic("httpcircuit: WithKey(nil)")
	case t.classify == nil:
		panic("httpcircuit: WithClassifier(nil)")
	case t.prefix == "":
		panic("httpcircuit: WithPrefix(\"\")")
	}
	t.group = factory.Group(t.prefix, t.cfg, t.groupOpts...)
	return t
}

// Host is the default key: the request URL's host, port included if the
// URL has one ("api.example.com", "127.0.0.1:8080"), else the request's
// Host field.
func Host(req *http.Request) string {
	if req.URL != nil && req.URL.Host != "" {
		return req.URL.Host
	}
	return req.Host
}

// Group returns the transport's circuit group.
func (t *Transport) Group() *purgatory.Group { return t.group }

// Breaker returns the circuit of key (a host, with the default key
// function), making it if need be: to read its state, or to open or close
// it by hand.
func (t *Transport) Breaker(key string) *purgatory.Breaker { return t.group.Breaker(key) }

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.group.Breaker(t.key(req))
	ctx := req.Context()
	tok, err := b.Allow(ctx)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			b.Done(ctx, tok, purgatory.ErrPanicked) // a panicking base transport fails; the panic goes on
		}
	}()
	resp, err := t.base.RoundTrip(req)
	done = true
	b.Done(ctx, tok, t.classify(resp, err))
	if t.retryAfter && resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			b.OpenFor(d)
		}
	}
	return resp, err
}

// CloseIdleConnections closes the base transport's idle connections, if
// it has a CloseIdleConnections method ([http.Client.CloseIdleConnections]
// calls it).
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// parseRetryAfter reads a Retry-After value: a number of seconds or an
// HTTP date. It reports false for anything else, and for a period that is
// not in the future.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 32) // more than 136 years is garbage
		if err != nil || n == 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := at.Sub(now)
	return d, d > 0
}

// StatusError is the error [Classify] gives for an answer that counts as
// a failure. The caller gets the response itself, not this error.
type StatusError struct {
	StatusCode int
}

// Error gives the status, such as "httpcircuit: status 503 Service Unavailable".
func (e *StatusError) Error() string {
	return "httpcircuit: status " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
}

// statusErrs holds the errors of 429 and 5xx answers, made once, so that
// classifying a failed answer allocates nothing.
var statusErrs = func() (m [100]*StatusError) {
	for i := range m {
		m[i] = &StatusError{StatusCode: 500 + i}
	}
	return m
}()

var tooMany = &StatusError{StatusCode: http.StatusTooManyRequests}

// Classify is the default classifier: it maps a round trip's results to
// the error a breaker counts, nil for a success. A transport error is
// returned as it is (a breaker counts it as a failure, except
// context.Canceled when the call's context is done: the caller's
// cancellation); an answer with status 5xx or 429 gives a [*StatusError];
// every other answer, 4xx included, is a success: the host answered.
//
// It works as a generated wrapper's result= function:
//
//	//purgatory:circuit key=req.URL.Host result=httpcircuit.Classify
//	Do(req *http.Request) (*http.Response, error)
func Classify(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	if resp == nil {
		return nil
	}
	switch c := resp.StatusCode; {
	case c >= 500 && c <= 599:
		return statusErrs[c-500]
	case c == http.StatusTooManyRequests:
		return tooMany
	}
	return nil
}
