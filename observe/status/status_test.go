package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/observe/status"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

const evilName = `<script>alert(1)</script>`

var errDown = errors.New("down")

// fixture makes a factory on a fake clock with a closed, an open, a rate
// and an isolated circuit.
func fixture(t *testing.T) (*purgatory.Factory, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	f.Breaker("inventory", purgatory.Config{Threshold: 3})
	f.Breaker("payments", purgatory.Config{Threshold: 1, TTL: 30 * time.Second})
	f.Breaker("search", purgatory.Config{FailureRate: 0.5, Window: time.Minute, MinCalls: 10})
	f.Breaker("stock", purgatory.Config{}).Isolate()
	return f, clock
}

func do(t *testing.T, h http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func state(t *testing.T, f *purgatory.Factory, name string) purgatory.State {
	t.Helper()
	b, ok := f.Lookup(name)
	require.True(t, ok, name)
	return b.State()
}

func yes(*http.Request) bool { return true }

var rowName = regexp.MustCompile(`<tr data-circuit="([^"]*)"`)

// rowNames returns the circuits of a page's rows, in order.
func rowNames(body string) []string {
	var names []string
	for _, m := range rowName.FindAllStringSubmatch(body, -1) {
		names = append(names, html.UnescapeString(m[1]))
	}
	return names
}

// TestPage checks that the page lists every circuit with its state in words
// and as a class, its numbers and configuration, and no controls when they
// are off.
func TestPage(t *testing.T) {
	f, clock := fixture(t)
	pay, _ := f.Lookup("payments")
	require.ErrorIs(t, pay.Do(t.Context(), func(context.Context) error { return errDown }), errDown)
	clock.Advance(10 * time.Second)
	h := status.New(f, status.Options{Title: "Shop circuits", Now: clock.Now})

	w := do(t, h, http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	body := w.Body.String()
	assert.Contains(t, body, "<title>Shop circuits</title>")
	assert.Contains(t, body, `<tr data-circuit="inventory" data-state="closed">`)
	assert.Contains(t, body, `<tr data-circuit="payments" data-state="open">`)
	assert.Contains(t, body, `<tr data-circuit="stock" data-state="isolated">`)
	assert.Contains(t, body, `<span class="state st-open">open</span>`)
	assert.Contains(t, body, `<span class="state st-isolated">isolated</span>`)
	// payments opened at 15:04:05 and retries in 20s; the rate circuit shows
	// its ratio and policy.
	assert.Contains(t, body, `<span class="state st-open">open</span><span class="sub">retry in 20s</span>`)
	assert.Contains(t, body, `<span class="sub">until an operator closes it</span>`)
	assert.Contains(t, body, `<td class="nowrap">15:04:05 UTC<span class="sub">10s ago</span></td>`)
	assert.Contains(t, body, `<span class="sub">0.0% failed</span>`)
	assert.Contains(t, body, "rate 50% over 1m0s (min 10 calls) · ttl 30s · trials 1")
	assert.Contains(t, body, "threshold 1 · ttl 30s · trials 1")
	assert.Contains(t, body, `<td class="num">0 / 1 / 0 / 0</td>`)
	// Counts per state, over all circuits.
	assert.Contains(t, body, `<a class="count c-open" href="?state=open" data-state="open"><b>1</b>open</a>`)
	assert.Contains(t, body, `<a class="count c-half-open zero" href="?state=half-open" data-state="half-open"><b>0</b>half-open</a>`)
	assert.Contains(t, body, `<a class="count c-closed" href="?state=closed" data-state="closed"><b>2</b>closed</a>`)
	// Not closed first, then by name.
	assert.Equal(t, []string{"payments", "stock", "inventory", "search"}, rowNames(body))
	// Which figures are whose.
	assert.Contains(t, body, `State<span class="scope fleet">fleet</span>`)
	assert.Contains(t, body, `Calls<span class="scope here">this process</span>`)
	assert.Contains(t, body, `Last failure<span class="scope here">this process</span>`)
	assert.NotContains(t, body, `<form method="post"`)
	// No external assets.
	assert.NotContains(t, body, "http://")
	assert.NotContains(t, body, "https://")
	assert.NotContains(t, body, " src=")
}

// TestPageEscapesNames registers a circuit named like a script and checks
// that it comes out as text everywhere: page, control URLs and JSON.
func TestPageEscapesNames(t *testing.T) {
	f := purgatory.NewFactory()
	t.Cleanup(func() { _ = f.Close() })
	f.Breaker(evilName, purgatory.Config{})
	h := status.New(f, status.Options{Authorize: yes})

	body := do(t, h, http.MethodGet, "/", nil).Body.String()
	assert.NotContains(t, body, evilName)
	assert.NotContains(t, body, "<script>alert")
	assert.Contains(t, body, `<span class="nm">&lt;script&gt;alert(1)&lt;/script&gt;</span>`)
	assert.Contains(t, body, `data-circuit="&lt;script&gt;alert(1)&lt;/script&gt;"`)
	assert.Contains(t, body, `action="circuits/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/open"`)
	// Exactly one script element: the page's own.
	assert.Equal(t, 1, strings.Count(body, "<script"))

	w := do(t, h, http.MethodGet, "/circuits", nil)
	assert.NotContains(t, w.Body.String(), "<script>")
	var l status.List
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &l))
	require.Len(t, l.Circuits, 1)
	assert.Equal(t, evilName, l.Circuits[0].Name)

	// And the control reaches it through its escaped path.
	w = do(t, h, http.MethodPost, "/circuits/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/open", nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	assert.Equal(t, purgatory.Open, state(t, f, evilName))
}

// TestJSON checks the JSON answer field by field.
func TestJSON(t *testing.T) {
	f, clock := fixture(t)
	h := status.New(f, status.Options{Now: clock.Now}) // counting rejections and recording from now on
	pay, _ := f.Lookup("payments")
	require.ErrorIs(t, pay.Do(t.Context(), func(context.Context) error { return errDown }), errDown)
	require.ErrorIs(t, pay.Do(t.Context(), func(context.Context) error { return nil }), purgatory.ErrOpen)
	clock.Advance(12500 * time.Millisecond)

	w := do(t, h, http.MethodGet, "/circuits", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var raw struct {
		Circuits []map[string]any `json:"circuits"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	require.Len(t, raw.Circuits, 4)
	p := raw.Circuits[0] // open first
	assert.Equal(t, "payments", p["name"])
	assert.Equal(t, "open", p["state"])
	assert.Equal(t, "2026-01-02T15:04:05Z", p["opened_at"])
	assert.Equal(t, "2026-01-02T15:04:35Z", p["until"])
	assert.Equal(t, 17.5, p["retry_after_seconds"])
	assert.Nil(t, p["failure_ratio"])
	assert.Contains(t, p, "failure_ratio") // present, null
	assert.Equal(t, map[string]any{"success": 0.0, "failure": 1.0, "excluded": 0.0, "ignored": 0.0, "rejected": 1.0, "store_errors": 0.0}, p["counts"])
	assert.Equal(t, map[string]any{"threshold": 1.0, "ttl_seconds": 30.0, "trials": 1.0, "failure_rate": 0.0,
		"window_seconds": 0.0, "min_calls": 0.0, "slow_call_seconds": 0.0, "max_ttl_seconds": 0.0, "excludes": 0.0}, p["config"])
	assert.Equal(t, "2026-01-02T15:04:05Z", p["last_transition"])
	assert.Equal(t, []any{map[string]any{"at": "2026-01-02T15:04:05Z", "from": "closed", "to": "open"}}, p["transitions"])
	assert.Equal(t, map[string]any{"error": "down", "at": "2026-01-02T15:04:05Z"}, p["last_failure"])
	assert.Equal(t, "isolated", raw.Circuits[1]["state"])
	assert.Nil(t, raw.Circuits[2]["opened_at"])
	assert.Nil(t, raw.Circuits[2]["last_transition"])
	assert.Nil(t, raw.Circuits[2]["last_failure"])
	assert.Equal(t, []any{}, raw.Circuits[2]["transitions"])
	assert.Equal(t, 0.0, raw.Circuits[3]["failure_ratio"]) // the rate circuit has one

	var l status.List
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &l))
	assert.False(t, l.Controls)
	assert.Equal(t, []string{"payments", "stock", "inventory", "search"},
		[]string{l.Circuits[0].Name, l.Circuits[1].Name, l.Circuits[2].Name, l.Circuits[3].Name})
	assert.Equal(t, 4, l.Total)
	assert.Equal(t, 4, l.Matched)
	assert.Equal(t, map[string]int{"closed": 2, "open": 1, "half-open": 0, "isolated": 1}, l.States)
}

// TestControls checks who may change a circuit, and how.
func TestControls(t *testing.T) {
	f, _ := fixture(t)

	t.Run("off without an authorizer", func(t *testing.T) {
		h := status.New(f, status.Options{})
		w := do(t, h, http.MethodPost, "/circuits/inventory/open", nil)
		assert.Equal(t, http.StatusForbidden, w.Code)
		assert.Equal(t, purgatory.Closed, state(t, f, "inventory"))
	})
	t.Run("authorizer says no", func(t *testing.T) {
		var asked int
		h := status.New(f, status.Options{Authorize: func(*http.Request) bool { asked++; return false }})
		w := do(t, h, http.MethodPost, "/circuits/inventory/open", nil)
		assert.Equal(t, http.StatusForbidden, w.Code)
		assert.Equal(t, 1, asked)
		assert.Equal(t, purgatory.Closed, state(t, f, "inventory"))
	})

	var lastUser string
	h := status.New(f, status.Options{Authorize: func(r *http.Request) bool {
		lastUser = r.Header.Get("X-User")
		return lastUser == "operator"
	}})
	op := map[string]string{"X-User": "operator"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"X-User": "operator"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	t.Run("page shows controls", func(t *testing.T) {
		body := do(t, h, http.MethodGet, "/", nil).Body.String()
		assert.Contains(t, body, `<form method="post" action="circuits/inventory/open"><button type="submit" data-action="open">Open</button></form>`)
		assert.Contains(t, body, `action="circuits/inventory/isolate"`)
		assert.Contains(t, body, `action="circuits/inventory/close"`)
	})
	t.Run("GET never changes state", func(t *testing.T) {
		for _, action := range []string{"open", "close", "isolate"} {
			w := do(t, h, http.MethodGet, "/circuits/inventory/"+action, op)
			assert.Equal(t, http.StatusMethodNotAllowed, w.Code, action)
			assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
		}
		assert.Equal(t, purgatory.Closed, state(t, f, "inventory"))
	})
	t.Run("other methods", func(t *testing.T) {
		assert.Equal(t, http.StatusMethodNotAllowed, do(t, h, http.MethodPost, "/", op).Code)
		assert.Equal(t, http.StatusMethodNotAllowed, do(t, h, http.MethodDelete, "/circuits", op).Code)
		assert.Equal(t, http.StatusMethodNotAllowed, do(t, h, http.MethodPut, "/circuits/inventory/open", op).Code)
		assert.Equal(t, purgatory.Closed, state(t, f, "inventory"))
	})
	t.Run("cross-site refused", func(t *testing.T) {
		for _, hd := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site"},
			{"Sec-Fetch-Site": "same-site"},
			{"Origin": "http://evil.example"},
		} {
			w := do(t, h, http.MethodPost, "/circuits/inventory/open", with(hd))
			assert.Equal(t, http.StatusForbidden, w.Code, hd)
		}
		assert.Equal(t, purgatory.Closed, state(t, f, "inventory"))
	})
	t.Run("form post redirects to the page", func(t *testing.T) {
		w := do(t, h, http.MethodPost, "/circuits/inventory/open", with(map[string]string{"Sec-Fetch-Site": "same-origin"}))
		require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
		assert.Equal(t, "../../", w.Header().Get("Location"))
		assert.Equal(t, purgatory.Open, state(t, f, "inventory"))
		assert.Equal(t, "operator", lastUser)
	})
	t.Run("JSON post answers the new status", func(t *testing.T) {
		w := do(t, h, http.MethodPost, "/circuits/inventory/isolate", with(map[string]string{"Accept": "application/json", "Origin": "http://example.com"}))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var c status.Circuit
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &c))
		assert.Equal(t, "inventory", c.Name)
		assert.Equal(t, "isolated", c.State)
		assert.Equal(t, purgatory.Isolated, state(t, f, "inventory"))

		w = do(t, h, http.MethodPost, "/circuits/inventory/close", with(map[string]string{"Accept": "application/json"}))
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, purgatory.Closed, state(t, f, "inventory"))
	})
	t.Run("unknown circuit or action", func(t *testing.T) {
		assert.Equal(t, http.StatusNotFound, do(t, h, http.MethodPost, "/circuits/nope/open", op).Code)
		assert.Equal(t, http.StatusNotFound, do(t, h, http.MethodPost, "/circuits/inventory/explode", op).Code)
		_, ok := f.Lookup("nope")
		assert.False(t, ok, "a control must not register a circuit")
	})
}

// TestMounted serves the handler under a prefix on a loopback port, as a
// program would, and works a circuit whose name has a slash.
func TestMounted(t *testing.T) {
	f := purgatory.NewFactory()
	t.Cleanup(func() { _ = f.Close() })
	f.Breaker("api/v1", purgatory.Config{})
	mux := http.NewServeMux()
	mux.Handle("/status/", http.StripPrefix("/status", status.New(f, status.Options{Authorize: yes})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/status/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `action="circuits/api%2Fv1/open"`)

	// A form post, as a browser without JavaScript makes it: the redirect
	// leads back to the page.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/status/circuits/api%2Fv1/open", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", srv.URL)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "/status/", resp.Request.URL.Path)
	assert.Contains(t, string(body), `<tr data-circuit="api/v1" data-state="open">`)
}
