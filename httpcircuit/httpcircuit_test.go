package httpcircuit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purgatory-go/purgatory/httpcircuit"
	"github.com/purgatory-go/purgatory/internal/redistest"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.Stop()
	os.Exit(code)
}

// host is an httptest server on 127.0.0.1 that counts the requests it gets.
type host struct {
	*httptest.Server
	hits atomic.Int64
}

func newHost(t *testing.T, h http.HandlerFunc) *host {
	t.Helper()
	s := &host{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// circuit returns the name of u's circuit with the default prefix.
func circuit(u string) string { return "http/" + strings.TrimPrefix(u, "http://") }

func newClient(t *testing.T, f *purgatory.Factory, opts ...httpcircuit.Option) (*http.Client, *httpcircuit.Transport) {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	tr := httpcircuit.New(base, f, opts...)
	return &http.Client{Transport: tr}, tr
}

// get sends a GET and drains and closes the body.
func get(c *http.Client, u string) (*http.Response, error) {
	resp, err := c.Get(u)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

var twoStrikes = httpcircuit.WithConfig(purgatory.Config{Threshold: 2, TTL: time.Minute})

func TestHostsHaveTheirOwnCircuits(t *testing.T) {
	healthy := newHost(t, status(http.StatusOK))
	failing := newHost(t, status(http.StatusServiceUnavailable))
	notFound := newHost(t, status(http.StatusNotFound))
	c, tr := newClient(t, purgatory.NewFactory(), twoStrikes)

	for range 2 {
		resp, err := get(c, failing.URL)
		require.NoError(t, err, "the caller gets the answer, 503 and all")
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	}
	_, err := get(c, failing.URL+"/again")
	require.Error(t, err)
	assert.True(t, errors.Is(err, purgatory.ErrOpen), "errors.Is(err, ErrOpen) through %T: %v", err, err)
	var uerr *url.Error
	require.ErrorAs(t, err, &uerr)
	var oe *purgatory.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, circuit(failing.URL), oe.Circuit)
	assert.EqualValues(t, 2, failing.hits.Load(), "a rejected request is not sent")

	for range 5 {
		resp, err := get(c, notFound.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		resp, err = get(c, healthy.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.EqualValues(t, 5, notFound.hits.Load(), "4xx answers are not failures")
	assert.Equal(t, purgatory.Closed, tr.Breaker(strings.TrimPrefix(notFound.URL, "http://")).State())
	assert.Equal(t, purgatory.Closed, tr.Breaker(strings.TrimPrefix(healthy.URL, "http://")).State())
	assert.Equal(t, purgatory.Open, tr.Breaker(strings.TrimPrefix(failing.URL, "http://")).State())
	assert.Equal(t, "http", tr.Group().Name())
	assert.Equal(t, 3, tr.Group().Len())
}

// hanging answers only once its request is gone, or the test ends.
func hanging(t *testing.T) *host {
	stop := make(chan struct{})
	h := newHost(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	t.Cleanup(func() { close(stop) }) // runs before the server's Close
	return h
}

// sentCounter is a transport that counts the requests the circuit lets
// through to it.
type sentCounter struct {
	http.RoundTripper
	sent atomic.Int64
}

func (s *sentCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	s.sent.Add(1)
	return s.RoundTripper.RoundTrip(r)
}

func TestTimeoutIsAFailure(t *testing.T) {
	slow := hanging(t)
	// The requests are counted as they leave the circuit, not as the server
	// gets them: a 20 ms timeout may end a request before the server's
	// handler has run, on a loaded machine.
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	sent := &sentCounter{RoundTripper: base}
	tr := httpcircuit.New(sent, purgatory.NewFactory(), twoStrikes)
	c := &http.Client{Transport: tr, Timeout: 20 * time.Millisecond}
	for range 2 {
		_, err := get(c, slow.URL)
		require.Error(t, err)
		assert.False(t, errors.Is(err, purgatory.ErrOpen))
	}
	assert.Equal(t, purgatory.Open, tr.Breaker(strings.TrimPrefix(slow.URL, "http://")).State())
	_, err := get(c, slow.URL)
	assert.ErrorIs(t, err, purgatory.ErrOpen)
	assert.EqualValues(t, 2, sent.sent.Load(), "a rejected request is not sent")
}

func TestCallerCancellationIsNotAFailure(t *testing.T) {
	slow := hanging(t)
	c, tr := newClient(t, purgatory.NewFactory(), twoStrikes)
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL, nil)
		require.NoError(t, err)
		go func() {
			for slow.hits.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err = c.Do(req)
		require.ErrorIs(t, err, context.Canceled)
		slow.hits.Store(0)
	}
	b := tr.Breaker(strings.TrimPrefix(slow.URL, "http://"))
	assert.Equal(t, purgatory.Closed, b.State())
	assert.Zero(t, b.Status().Counts.Failure)
	assert.EqualValues(t, 3, b.Status().Counts.Ignored)
}

func retryAfterOf(t *testing.T, err error) time.Duration {
	t.Helper()
	var oe *purgatory.OpenError
	require.ErrorAs(t, err, &oe)
	return oe.RetryAfter
}

func TestRetryAfter(t *testing.T) {
	// An HTTP date is written by the server as it answers, relative to then
	// (the table is made before the earlier cases run).
	date := func(d time.Duration) string { return "date " + d.String() }
	for _, c := range []struct {
		name     string
		code     int
		value    string
		open     bool
		min, max time.Duration // RetryAfter of the rejection
	}{
		{"seconds", 503, "7", true, 7 * time.Second, 7 * time.Second},
		{"429", 429, "3", true, 3 * time.Second, 3 * time.Second},
		{"http date", 503, date(20 * time.Second), true, 15 * time.Second, 20 * time.Second}, // whole seconds, then the time to the rejection
		{"capped at maxttl", 503, "3600", true, 2 * time.Minute, 2 * time.Minute},
		{"garbage", 503, "soon", false, 0, 0},
		{"negative", 503, "-5", false, 0, 0},
		{"fraction", 503, "1.5", false, 0, 0},
		{"date in the past", 503, date(-time.Hour), false, 0, 0},
		{"zero", 429, "0", false, 0, 0},
		{"not on 500", 500, "7", false, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newHost(t, func(w http.ResponseWriter, _ *http.Request) {
				v := c.value
				if d, ok := strings.CutPrefix(v, "date "); ok {
					in, err := time.ParseDuration(d)
					require.NoError(t, err)
					v = time.Now().Add(in).UTC().Format(http.TimeFormat)
				}
				w.Header().Set("Retry-After", v)
				w.WriteHeader(c.code)
			})
			cl, tr := newClient(t, purgatory.NewFactory(),
				httpcircuit.WithConfig(purgatory.Config{Threshold: 5, TTL: time.Minute, MaxTTL: 2 * time.Minute}))
			resp, err := get(cl, srv.URL)
			require.NoError(t, err)
			assert.Equal(t, c.code, resp.StatusCode)
			b := tr.Breaker(strings.TrimPrefix(srv.URL, "http://"))
			if !c.open {
				assert.Equal(t, purgatory.Closed, b.State(), "one failure of five, no usable hint")
				return
			}
			require.Equal(t, purgatory.Open, b.State())
			_, err = get(cl, srv.URL)
			ra := retryAfterOf(t, err)
			assert.True(t, ra >= c.min && ra <= c.max, "RetryAfter %v not in [%v, %v]", ra, c.min, c.max)
		})
	}
	t.Run("off", func(t *testing.T) {
		srv := newHost(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		})
		cl, tr := newClient(t, purgatory.NewFactory(), httpcircuit.WithRetryAfter(false))
		_, err := get(cl, srv.URL)
		require.NoError(t, err)
		assert.Equal(t, purgatory.Closed, tr.Breaker(strings.TrimPrefix(srv.URL, "http://")).State())
	})
}

// closeRecorder is a request body that records Close.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestRejectionClosesTheBody(t *testing.T) {
	srv := newHost(t, status(http.StatusOK))
	tr := httpcircuit.New(nil, purgatory.NewFactory())
	tr.Breaker(strings.TrimPrefix(srv.URL, "http://")).Open()
	body := &closeRecorder{Reader: strings.NewReader("payload")}
	req, err := http.NewRequest(http.MethodPost, srv.URL, body)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	assert.Nil(t, resp)
	require.ErrorIs(t, err, purgatory.ErrOpen)
	assert.True(t, body.closed.Load())
	assert.Zero(t, srv.hits.Load())
}

func TestCustomKeyAndPrefix(t *testing.T) {
	srv := newHost(t, status(http.StatusBadGateway))
	c, tr := newClient(t, purgatory.NewFactory(), twoStrikes, httpcircuit.WithPrefix("api"),
		httpcircuit.WithKey(func(r *http.Request) string { return r.Header.Get("X-Tenant") }))
	send := func(tenant string) error {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("X-Tenant", tenant)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	require.NoError(t, send("acme"))
	require.NoError(t, send("acme"))
	assert.ErrorIs(t, send("acme"), purgatory.ErrOpen)
	assert.NoError(t, send("globex"))
	assert.Equal(t, "api/acme", tr.Breaker("acme").Name())
	assert.Equal(t, "api", tr.Breaker("acme").Group())
	err := send("")
	require.NoError(t, err)
	assert.Equal(t, "api/~empty", tr.Breaker("").Name())
}

func TestCustomClassifier(t *testing.T) {
	srv := newHost(t, status(http.StatusNotFound))
	c, tr := newClient(t, purgatory.NewFactory(), twoStrikes,
		httpcircuit.WithClassifier(func(resp *http.Response, err error) error {
			if err == nil && resp.StatusCode == http.StatusNotFound {
				return errors.New("gone")
			}
			return httpcircuit.Classify(resp, err)
		}))
	for range 2 {
		_, err := get(c, srv.URL)
		require.NoError(t, err)
	}
	assert.Equal(t, purgatory.Open, tr.Breaker(strings.TrimPrefix(srv.URL, "http://")).State())
}

func TestIdleHostsAreEvicted(t *testing.T) {
	srv := newHost(t, status(http.StatusOK))
	clk := clocktest.New(time.Now())
	f := purgatory.NewFactory(purgatory.WithClock(clk))
	c, tr := newClient(t, f, httpcircuit.WithGroupOptions(purgatory.WithIdleTimeout(time.Minute)))
	_, err := get(c, srv.URL)
	require.NoError(t, err)
	name := circuit(srv.URL)
	_, ok := f.Lookup(name)
	require.True(t, ok)
	clk.Advance(2 * time.Minute)
	_, ok = f.Lookup(name)
	assert.False(t, ok, "an idle host's circuit is dropped")
	assert.Zero(t, tr.Group().Len())
}

func TestClassify(t *testing.T) {
	errNet := errors.New("connection refused")
	for _, c := range []struct {
		resp *http.Response
		err  error
		want string
	}{
		{&http.Response{StatusCode: 200}, nil, ""},
		{&http.Response{StatusCode: 304}, nil, ""},
		{&http.Response{StatusCode: 400}, nil, ""},
		{&http.Response{StatusCode: 404}, nil, ""},
		{&http.Response{StatusCode: 499}, nil, ""},
		{&http.Response{StatusCode: 429}, nil, "httpcircuit: status 429 Too Many Requests"},
		{&http.Response{StatusCode: 500}, nil, "httpcircuit: status 500 Internal Server Error"},
		{&http.Response{StatusCode: 503}, nil, "httpcircuit: status 503 Service Unavailable"},
		{&http.Response{StatusCode: 599}, nil, "httpcircuit: status 599 "},
		{&http.Response{StatusCode: 600}, nil, ""},
		{nil, errNet, "connection refused"},
		{nil, context.DeadlineExceeded, "context deadline exceeded"},
		{nil, nil, ""},
	} {
		got := httpcircuit.Classify(c.resp, c.err)
		if c.want == "" {
			assert.NoError(t, got)
			continue
		}
		require.Error(t, got)
		assert.Equal(t, c.want, got.Error())
	}
	var se *httpcircuit.StatusError
	require.ErrorAs(t, httpcircuit.Classify(&http.Response{StatusCode: 502}, nil), &se)
	assert.Equal(t, 502, se.StatusCode)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = httpcircuit.Classify(&http.Response{StatusCode: 503}, nil) }))
}

// nopTransport answers every request with the same response.
type nopTransport struct{ resp *http.Response }

func (n nopTransport) RoundTrip(*http.Request) (*http.Response, error) { return n.resp, nil }

func TestRoundTripAllocatesNothing(t *testing.T) {
	tr := httpcircuit.New(nopTransport{&http.Response{StatusCode: 200}}, purgatory.NewFactory())
	req, _ := http.NewRequest(http.MethodGet, "http://api.example.com/x", nil)
	_, _ = tr.RoundTrip(req)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = tr.RoundTrip(req) }), "closed")
	tr.Breaker("api.example.com").Open()
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = tr.RoundTrip(req) }), "open")
}

func TestNewPanicsOnBadOptions(t *testing.T) {
	f := purgatory.NewFactory()
	assert.PanicsWithValue(t, "httpcircuit: WithKey(nil)", func() { httpcircuit.New(nil, f, httpcircuit.WithKey(nil)) })
	assert.PanicsWithValue(t, "httpcircuit: WithClassifier(nil)", func() { httpcircuit.New(nil, f, httpcircuit.WithClassifier(nil)) })
	assert.PanicsWithValue(t, `httpcircuit: WithPrefix("")`, func() { httpcircuit.New(nil, f, httpcircuit.WithPrefix("")) })
	assert.Panics(t, func() { httpcircuit.New(nil, f, httpcircuit.WithConfig(purgatory.Config{Threshold: -1})) })
	assert.Same(t, purgatory.Default(), purgatory.Default())
	tr := httpcircuit.New(nil, nil)
	assert.Equal(t, "http", tr.Group().Name())
}

// Two processes (two factories, each with its own Redis store and
// transport) share each host's circuit through Redis.
func TestRedisSharesHostCircuits(t *testing.T) {
	client, prefix := redistest.Client(t)
	failing := newHost(t, status(http.StatusServiceUnavailable))
	healthy := newHost(t, status(http.StatusOK))
	var clients [2]*http.Client
	var transports [2]*httpcircuit.Transport
	for i := range clients {
		st := redis.New(client, redis.WithPrefix(prefix), redis.WithTimeout(30*time.Second)) // a bound, not a timing: past it the process goes on locally
		t.Cleanup(func() { _ = st.Close() })
		f := purgatory.NewFactory(purgatory.WithStore(st))
		t.Cleanup(func() { _ = f.Close() })
		clients[i], transports[i] = newClient(t, f, twoStrikes)
	}
	hostOf := strings.TrimPrefix(failing.URL, "http://")
	transports[1].Breaker(hostOf) // B watches the host's circuit from now on
	for range 2 {
		_, err := get(clients[0], failing.URL)
		require.NoError(t, err)
	}
	// Results reach Redis off the caller's path: the trip is one round trip later.
	require.Eventually(t, func() bool { return transports[0].Breaker(hostOf).State() == purgatory.Open },
		30*time.Second, time.Millisecond, "the process that saw the failures opens the host's circuit")
	require.Eventually(t, func() bool { return transports[1].Breaker(hostOf).State() == purgatory.Open },
		30*time.Second, 5*time.Millisecond, "the other process sees the host's circuit open")
	_, err := get(clients[1], failing.URL)
	assert.ErrorIs(t, err, purgatory.ErrOpen)
	assert.EqualValues(t, 2, failing.hits.Load())
	resp, err := get(clients[1], healthy.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	n, err := client.Exists(context.Background(), prefix+"{"+circuit(failing.URL)+"}:state").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the record is keyed by the host's circuit name")
}

// A Retry-After seen by one process opens the host's circuit for that long
// in every process sharing the Redis store.
func TestRedisSharesRetryAfter(t *testing.T) {
	client, prefix := redistest.Client(t)
	busy := newHost(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	var clients [2]*http.Client
	var transports [2]*httpcircuit.Transport
	for i := range clients {
		st := redis.New(client, redis.WithPrefix(prefix), redis.WithTimeout(30*time.Second)) // a bound, not a timing: past it the process goes on locally
		t.Cleanup(func() { _ = st.Close() })
		f := purgatory.NewFactory(purgatory.WithStore(st))
		t.Cleanup(func() { _ = f.Close() })
		clients[i], transports[i] = newClient(t, f, httpcircuit.WithConfig(purgatory.Config{TTL: time.Minute}))
	}
	hostOf := strings.TrimPrefix(busy.URL, "http://")
	transports[1].Breaker(hostOf)
	resp, err := get(clients[0], busy.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	// OpenFor is two store calls (a Force, then the period's end): B may
	// see the first, with the TTL, a round trip before the second.
	require.Eventually(t, func() bool {
		st := transports[1].Breaker(hostOf).Status()
		return st.State == purgatory.Open && st.RetryAfter <= 30*time.Second
	}, 30*time.Second, 5*time.Millisecond)
	_, err = get(clients[1], busy.URL)
	ra := retryAfterOf(t, err)
	// The period runs in wall time: leave the loaded machine 15 s to get
	// here, still well below the TTL.
	assert.True(t, ra > 15*time.Second && ra <= 30*time.Second, "RetryAfter %v: the server's 30s, not the 1m TTL", ra)
	assert.EqualValues(t, 1, busy.hits.Load())
}
