package status_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/observe/status"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowser drives headless Chromium against the page served on a
// loopback port: it shows each circuit's state, an operator's click opens a
// circuit and the page shows it without a reload, and a change made on the
// server shows up by itself. It saves a screenshot to $PURGATORY_SCREENSHOT
// (or the test's temporary directory).
//
// Without Chromium it skips, unless CI=true, where .ci/run installs it.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing (.ci/run installs Debian's chromium package): %v", chromiumPath, err)
		}
		t.Skipf("skipping the browser test: %s not found (apt-get install chromium to run it)", chromiumPath)
	}

	f, clock := fixture(t)
	f.Breaker(evilName, purgatory.Config{})
	f.Breaker("recommendations", purgatory.Config{Threshold: 4})
	inv, _ := f.Lookup("inventory")
	pay, _ := f.Lookup("payments")
	h := status.New(f, status.Options{Authorize: yes, Refresh: 200 * time.Millisecond, Title: "Shop circuits"})
	for range 40 {
		_ = inv.Do(t.Context(), func(context.Context) error { return nil })
	}
	_ = inv.Do(t.Context(), func(context.Context) error { return errDown })
	for range 25 {
		_ = pay.Do(t.Context(), func(context.Context) error { return nil })
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1500, 560))...)
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

	rowStates := func() map[string]string {
		var pairs [][]string
		require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(
			`Array.from(document.querySelectorAll("#rows tr")).map(r => [r.dataset.circuit, r.dataset.state, r.querySelector(".state").textContent])`, &pairs)))
		m := map[string]string{}
		for _, p := range pairs {
			require.Equal(t, p[1], p[2], "state in words matches the row's state")
			m[p[0]] = p[1]
		}
		return m
	}

	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`tr[data-circuit="payments"]`, chromedp.ByQuery),
		// A mark that a reload would wipe out.
		chromedp.Evaluate(`window.notReloaded = true`, nil),
	))
	require.Equal(t, map[string]string{
		evilName: "closed", "inventory": "closed", "payments": "closed",
		"recommendations": "closed", "search": "closed", "stock": "isolated",
	}, rowStates())
	var evilText string
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("tr[data-state=closed] td.name .nm").textContent`, &evilText)))
	require.Equal(t, evilName, evilText, "the name is shown as text")

	// The operator opens "payments" with a click.
	require.NoError(t, chromedp.Run(ctx, chromedp.Click(`tr[data-circuit="payments"] button[data-action="open"]`, chromedp.ByQuery)))
	require.Eventually(t, func() bool { return pay.State() == purgatory.Open }, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return rowStates()["payments"] == "open" }, 30*time.Second, 50*time.Millisecond)

	// A change made elsewhere shows up by itself.
	clock.Advance(time.Second)
	require.ErrorIs(t, inv.Do(t.Context(), func(context.Context) error { return errDown }), errDown)
	require.ErrorIs(t, inv.Do(t.Context(), func(context.Context) error { return errDown }), errDown) // trips
	require.Eventually(t, func() bool { return rowStates()["inventory"] == "open" }, 30*time.Second, 50*time.Millisecond)

	var notReloaded bool
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.notReloaded === true`, &notReloaded)))
	require.True(t, notReloaded, "the page was reloaded")
	require.Zero(t, dialogs.Load(), "a script ran a dialog")

	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	out := os.Getenv("PURGATORY_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "status-page.png")
	}
	require.NoError(t, os.WriteFile(out, png, 0o644))
	t.Logf("screenshot: %s", out)
}
