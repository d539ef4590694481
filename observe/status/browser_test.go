package status_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/internal/testbin"
	"github.com/purgatory-go/purgatory/observe/status"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium and returns a tab, or skips the test
// without Chromium unless CI=true, where .ci/run installs it.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	testbin.Need(t, chromiumPath, "chromium")
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(width, height))...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(cancelCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	var dialogs atomic.Int32
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	})
	t.Cleanup(func() { assert.Zero(t, dialogs.Load(), "a script ran a dialog") })
	// Record the page's long tasks (> 50 ms on the main thread: a frozen tab).
	require.NoError(t, chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`window.longTasks = [];
new PerformanceObserver(function (l) { l.getEntries().forEach(function (e) { window.longTasks.push(e.duration); }); }).observe({type: "longtask"});`).Do(ctx)
		return err
	})))
	return ctx
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	var v T
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(js, &v)))
	return v
}

// shownRows returns the page's visible rows: circuit and state.
func shownRows(t *testing.T, ctx context.Context) [][2]string {
	t.Helper()
	pairs := eval[[][]string](t, ctx, `Array.from(document.querySelectorAll("#rows tr[data-circuit]")).filter(r => !r.hidden).map(r => [r.dataset.circuit, r.dataset.state, r.querySelector(".state").textContent])`)
	out := make([][2]string, 0, len(pairs))
	for _, p := range pairs {
		require.Equal(t, p[1], p[2], "state in words matches the row's state")
		out = append(out, [2]string{p[0], p[1]})
	}
	return out
}

func shownNames(t *testing.T, ctx context.Context) []string {
	var names []string
	for _, r := range shownRows(t, ctx) {
		names = append(names, r[0])
	}
	return names
}

// typeFilter sets the name filter as a user's typing does.
func typeFilter(t *testing.T, ctx context.Context, q string) {
	t.Helper()
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(
		`(function (i) { i.value = %q; i.dispatchEvent(new Event("input", {bubbles: true})); })(document.querySelector("#filter input[name=q]"))`, q), nil)))
}

func refreshes(t *testing.T, ctx context.Context) int {
	return eval[int](t, ctx, `performance.getEntriesByName("purgatory-refresh").length`)
}

// waitRefreshes waits until the page has swapped its table n more times.
func waitRefreshes(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	from := refreshes(t, ctx)
	require.Eventually(t, func() bool { return refreshes(t, ctx) >= from+n }, 30*time.Second, 20*time.Millisecond)
}

// shop makes the circuits of the screenshot: a factory on a fake clock
// whose handler has seen ten minutes of outages.
func shop(t *testing.T) (*purgatory.Factory, *clocktest.Clock, *status.Handler) {
	clock := clocktest.New(time.Date(2026, 1, 2, 14, 50, 0, 0, time.UTC))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	h := status.New(f, status.Options{Authorize: yes, Refresh: 200 * time.Millisecond, Title: "Shop circuits", Now: clock.Now})
	t.Cleanup(h.Close)

	partner := f.Breaker("http/api.partner.example", purgatory.Config{Threshold: 3, TTL: 30 * time.Second})
	cdn := f.Breaker("http/cdn.example.net", purgatory.Config{Threshold: 5, TTL: 20 * time.Second})
	geo := f.Breaker("http/geo.example.org", purgatory.Config{Threshold: 5, TTL: time.Minute})
	inv := f.Breaker("inventory", purgatory.Config{Threshold: 3})
	pay := f.Breaker("payments", purgatory.Config{Threshold: 1, TTL: 30 * time.Second})
	search := f.Breaker("search", purgatory.Config{FailureRate: 0.5, Window: time.Minute, MinCalls: 10})
	f.Breaker("recommendations", purgatory.Config{Threshold: 4})
	f.Breaker(evilName, purgatory.Config{})
	for _, host := range []string{"http/auth.example.com", "http/mail.example.com", "http/maps.example.org"} {
		f.Breaker(host, purgatory.Config{})
	}
	stock := f.Breaker("stock", purgatory.Config{})

	ok := func(b *purgatory.Breaker, n int) {
		for range n {
			_ = b.Do(t.Context(), func(context.Context) error { return nil })
		}
	}
	fail := func(b *purgatory.Breaker, n int, err error) {
		for range n {
			_ = b.Do(t.Context(), func(context.Context) error { return err })
		}
	}
	e503 := errors.New(`GET https://api.partner.example/v2/quote: 503 Service Unavailable: {"error":"upstream overloaded","retry_after":30}`)
	timeout := fmt.Errorf("GET https://cdn.example.net/img/42.webp: %w", context.DeadlineExceeded)
	ok(search, 40)
	ok(pay, 25)
	ok(inv, 30)
	fail(inv, 1, errors.New("inventory: dial tcp 10.0.4.17:5432: connect: connection refused"))
	ok(geo, 12)
	// Ten minutes: the partner flaps, the CDN times out and stays down, geo
	// had one outage, stock was isolated by an operator.
	for minute := range 10 {
		ok(partner, 5)
		switch minute {
		case 1, 4, 7:
			fail(partner, 3, e503) // open
		case 2, 5, 8:
			clock.Advance(30 * time.Second) // half-open
			ok(partner, 1)                  // closed
		}
		switch minute {
		case 3:
			fail(geo, 5, errors.New("geo: 502 Bad Gateway"))
		case 5:
			clock.Advance(time.Minute)
			ok(geo, 3)
		case 2:
			stock.Isolate()
		}
		if minute == 6 {
			ok(cdn, 20)
			fail(cdn, 5, timeout)
		}
		if minute > 6 {
			clock.Advance(20 * time.Second) // half-open
			fail(cdn, 1, timeout)           // open again
		}
		clock.Advance(time.Minute)
	}
	clock.Advance(25 * time.Second) // the CDN is half-open
	fail(partner, 3, e503)          // open again
	return f, clock, h
}

// TestBrowser drives headless Chromium against the page served on a
// loopback port: the order (not closed first), the counts, the name filter
// (as one types, and surviving refreshes), an operator's click, a circuit
// tripping into view without a reload, and the timeline. It saves a
// screenshot to $PURGATORY_SCREENSHOT (or the test's temporary directory).
func TestBrowser(t *testing.T) {
	ctx := browser(t, 1440, 760)
	f, clock, h := shop(t)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`tr[data-circuit="payments"]`, chromedp.ByQuery),
		chromedp.Evaluate(`window.notReloaded = true`, nil), // a mark a reload would wipe out
	))
	// Not closed first (open, half-open, isolated), then by name.
	require.Equal(t, []string{
		"http/api.partner.example", "http/cdn.example.net", "stock",
		evilName, "http/auth.example.com", "http/geo.example.org", "http/mail.example.com", "http/maps.example.org",
		"inventory", "payments", "recommendations", "search",
	}, shownNames(t, ctx))
	assert.Equal(t, "1 open 1 half-open 1 isolated 9 closed 12 in all", eval[string](t, ctx,
		`Array.from(document.querySelectorAll("#summary .count")).map(c => c.textContent.replace(/(\d)(\D)/, "$1 $2")).join(" ")`))
	require.Equal(t, evilName, eval[string](t, ctx, `document.querySelector("tr[data-state=closed] td.name .nm").textContent`), "the name is shown as text")

	// The partner's timeline shows its flapping: closed, open, half-open (too
	// short to see), closed, three times; the last failure tells a 503
	// from the CDN's timeout.
	classes := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('tr[data-circuit="http/api.partner.example"] svg.tl rect')).map(r => r.getAttribute("class"))`)
	assert.Equal(t, 4, strings.Count(strings.Join(classes, " "), "f-open"), classes)
	assert.Contains(t, classes, "f-closed")
	assert.Contains(t, eval[string](t, ctx, `document.querySelector('tr[data-circuit="http/api.partner.example"] .errtext').textContent`), "503 Service Unavailable")
	assert.Contains(t, eval[string](t, ctx, `document.querySelector('tr[data-circuit="http/cdn.example.net"] .errtext').textContent`), "context deadline exceeded")

	// The filter applies as one types, and still after refreshes.
	typeFilter(t, ctx, "HTTP/")
	require.Equal(t, []string{"http/api.partner.example", "http/cdn.example.net", "http/auth.example.com", "http/geo.example.org", "http/mail.example.com", "http/maps.example.org"}, shownNames(t, ctx), "at once")
	waitRefreshes(t, ctx, 3)
	require.Len(t, shownNames(t, ctx), 6)
	assert.Equal(t, 6, eval[int](t, ctx, `document.querySelectorAll("#rows tr[data-circuit]").length`), "the server filtered")
	assert.Equal(t, "?q=HTTP%2F", eval[string](t, ctx, `location.search`))
	assert.Equal(t, "HTTP/", eval[string](t, ctx, `document.querySelector("#filter input[name=q]").value`))
	typeFilter(t, ctx, "")
	// A refresh asked for before the filter was cleared may still land,
	// with the server's six rows: wait for one asked for after it.
	require.Eventually(t, func() bool { return len(shownNames(t, ctx)) == 12 }, 30*time.Second, 20*time.Millisecond)
	assert.Equal(t, "", eval[string](t, ctx, `location.search`))

	// The operator opens "payments" with a click; it moves up. (The click is
	// dispatched in the page: chromedp.Click finds the node, then clicks at
	// its place, by which time a refresh may have replaced it.)
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('tr[data-circuit="payments"] button[data-action="open"]').click()`, nil)))
	pay, _ := f.Lookup("payments")
	require.Eventually(t, func() bool { return pay.State() == purgatory.Open }, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return shownRows(t, ctx)[1] == [2]string{"payments", "open"} }, 30*time.Second, 20*time.Millisecond)

	// A circuit trips on the server and comes into view among the open ones.
	inv, _ := f.Lookup("inventory")
	clock.Advance(time.Second)
	for range 3 {
		_ = inv.Do(t.Context(), func(context.Context) error { return errors.New("inventory: 500 Internal Server Error") })
	}
	require.Equal(t, purgatory.Open, inv.State())
	require.Eventually(t, func() bool {
		return slices.Equal(shownNames(t, ctx)[:3], []string{"http/api.partner.example", "inventory", "payments"})
	}, 30*time.Second, 20*time.Millisecond)

	require.True(t, eval[bool](t, ctx, `window.notReloaded === true`), "the page was reloaded")
	require.Empty(t, eval[string](t, ctx, `document.getElementById("error").textContent`))

	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	out := os.Getenv("PURGATORY_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "status-page.png")
	}
	require.NoError(t, os.WriteFile(out, png, 0o644))
	t.Logf("screenshot: %s", out)
}

// TestBrowserManyCircuits serves 10,000 circuits and checks that the page
// shows the first rows, not closed first, that a circuit tripping among
// them comes into view, and that the filter finds one; it logs the time to
// the first render and per refresh, and the longest main-thread task (more
// than 50 ms would be a frozen tab; Chromium reports only those). With
// PURGATORY_BROWSER_ALL_ROWS=1 it also measures the page with all 10,000
// rows (limit=0).
func TestBrowserManyCircuits(t *testing.T) {
	ctx := browser(t, 1440, 900)
	f, bs := many(t, 10_000)
	h := status.New(f, status.Options{Authorize: yes, Refresh: 200 * time.Millisecond})
	t.Cleanup(h.Close)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	type perf struct {
		Response, DOMContentLoaded, FirstContentfulPaint float64
		Refresh, LongTasks                               []float64
	}
	measure := func() perf {
		return eval[perf](t, ctx, `(function () {
  var n = performance.getEntriesByType("navigation")[0], p = performance.getEntriesByName("first-contentful-paint")[0];
  return {Response: n.responseEnd, DOMContentLoaded: n.domContentLoadedEventEnd, FirstContentfulPaint: p ? p.startTime : -1,
    Refresh: performance.getEntriesByName("purgatory-refresh").map(function (e) { return e.duration; }), LongTasks: window.longTasks};
})()`)
	}
	report := func(what string, p perf) {
		slices.Sort(p.Refresh)
		med := -1.0
		if len(p.Refresh) > 0 {
			med = p.Refresh[len(p.Refresh)/2]
		}
		longest := 0.0
		for _, d := range p.LongTasks {
			longest = max(longest, d)
		}
		t.Logf("%s: response %.0f ms, DOMContentLoaded %.0f ms, first contentful paint %.0f ms; refresh median %.0f ms, max %.0f ms over %d; long tasks %d, longest %.0f ms",
			what, p.Response, p.DOMContentLoaded, p.FirstContentfulPaint, med, slices.Max(append(p.Refresh, 0)), len(p.Refresh), len(p.LongTasks), longest)
	}

	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`tr[data-circuit="host-00000.example"]`, chromedp.ByQuery),
	))
	names := shownNames(t, ctx)
	require.Len(t, names, 200)
	require.Equal(t, []string{"host-00000.example", "host-01000.example"}, names[:2], "open first")
	require.Equal(t, "host-00500.example", names[10], "then isolated")
	assert.Contains(t, eval[string](t, ctx, `document.getElementById("shown").textContent`), "showing the first 200 of 10,000 matching")
	assert.Equal(t, "10,000", eval[string](t, ctx, `document.querySelector("#summary .count:not([data-state]) b").textContent`))

	// The last circuit by name trips: it comes into view among the open ones.
	_ = bs[9999].Do(t.Context(), func(context.Context) error { return errDown })
	bs[9999].Open()
	require.Eventually(t, func() bool { return slices.Contains(shownNames(t, ctx)[:11], "host-09999.example") }, 30*time.Second, 20*time.Millisecond)
	waitRefreshes(t, ctx, 2)
	report("10,000 circuits, 200 rows", measure())

	// The filter finds the ten of 9990–9999.
	typeFilter(t, ctx, "host-0999")
	require.Eventually(t, func() bool { return len(shownNames(t, ctx)) == 10 }, 30*time.Second, 20*time.Millisecond,
		"%v %s %s", shownNames(t, ctx), eval[string](t, ctx, `document.getElementById("error").textContent`), eval[string](t, ctx, `location.href`))
	waitRefreshes(t, ctx, 1)
	require.Len(t, shownNames(t, ctx), 10)
	require.Equal(t, "host-09999.example", shownNames(t, ctx)[0])

	// Every row at once, as limit=0 asks: slower, still live. It takes tens
	// of seconds, so only on request (for the figures in the README).
	if os.Getenv("PURGATORY_BROWSER_ALL_ROWS") == "" {
		return
	}
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/?limit=0"),
		chromedp.WaitVisible(`tr[data-circuit="host-09998.example"]`, chromedp.ByQuery),
	))
	require.Len(t, shownNames(t, ctx), 10_000)
	waitRefreshes(t, ctx, 2)
	report("10,000 circuits, 10,000 rows", measure())
}
