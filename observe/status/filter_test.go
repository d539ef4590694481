package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/observe/status"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

func list(t *testing.T, h http.Handler, target string) status.List {
	t.Helper()
	w := do(t, h, http.MethodGet, target, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var l status.List
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &l))
	return l
}

func names(l status.List) []string {
	out := []string{}
	for _, c := range l.Circuits {
		out = append(out, c.Name)
	}
	return out
}

// TestFilter checks the JSON's and the page's query parameters: state, q
// and limit, the order they keep, the counts that ignore them, and the
// answer to bad ones.
func TestFilter(t *testing.T) {
	f := purgatory.NewFactory()
	t.Cleanup(func() { _ = f.Close() })
	for _, n := range []string{"api.example.com", "API.other.org", "cdn.example.com", "db", "mail.example.com", "zeta.example.com"} {
		f.Breaker(n, purgatory.Config{})
	}
	mustLookup := func(n string) *purgatory.Breaker { b, _ := f.Lookup(n); return b }
	mustLookup("zeta.example.com").Open()
	mustLookup("db").Isolate()
	mustLookup("cdn.example.com").Open()
	h := status.New(f, status.Options{})

	l := list(t, h, "/circuits")
	assert.Equal(t, []string{"cdn.example.com", "zeta.example.com", "db", "API.other.org", "api.example.com", "mail.example.com"}, names(l))
	assert.Equal(t, 6, l.Total)
	assert.Equal(t, 6, l.Matched)

	l = list(t, h, "/circuits?state=open")
	assert.Equal(t, []string{"cdn.example.com", "zeta.example.com"}, names(l))
	assert.Equal(t, map[string]int{"closed": 3, "open": 2, "half-open": 0, "isolated": 1}, l.States, "counts ignore the filter")

	l = list(t, h, "/circuits?state=isolated,open")
	assert.Equal(t, []string{"cdn.example.com", "zeta.example.com", "db"}, names(l))

	l = list(t, h, "/circuits?q=API")
	assert.Equal(t, []string{"API.other.org", "api.example.com"}, names(l), "q ignores case")

	l = list(t, h, "/circuits?q=example&limit=2")
	assert.Equal(t, []string{"cdn.example.com", "zeta.example.com"}, names(l), "the limit keeps the first in order")
	assert.Equal(t, 4, l.Matched)

	l = list(t, h, "/circuits?state=half-open&q=x")
	assert.Equal(t, []string{}, names(l))
	assert.Equal(t, 0, l.Matched)

	for target, want := range map[string]string{
		"/circuits?state=opened": `bad state "opened": want closed, open, half-open or isolated`,
		"/circuits?limit=-1":     `bad limit "-1": want a whole number >= 0`,
		"/circuits?limit=ten":    `bad limit "ten"`,
		"/?state=half_open":      `bad state "half_open"`,
	} {
		w := do(t, h, http.MethodGet, target, nil)
		assert.Equal(t, http.StatusBadRequest, w.Code, target)
		assert.Contains(t, w.Body.String(), want, target)
	}

	// Circuits made or removed after a request are seen by the next one.
	f.Breaker("api.new.example", purgatory.Config{})
	require.True(t, f.Remove("cdn.example.com"))
	l = list(t, h, "/circuits?q=api")
	assert.Equal(t, []string{"API.other.org", "api.example.com", "api.new.example"}, names(l))
	l = list(t, h, "/circuits?state=open")
	assert.Equal(t, []string{"zeta.example.com"}, names(l))
	f.Breaker("cdn.example.com", purgatory.Config{}).Open()

	// The page takes the same parameters and keeps them in its form.
	body := do(t, h, http.MethodGet, "/?q=example&state=open,half-open,isolated", nil).Body.String()
	assert.Equal(t, []string{"cdn.example.com", "zeta.example.com"}, rowNames(body))
	assert.Contains(t, body, `<input type="search" name="q" value="example"`)
	assert.Contains(t, body, `<option value="open,half-open,isolated" selected>not closed</option>`)
	assert.Contains(t, body, `<span id="shown">2 matching</span>`)

	// The page shows Options.Rows unless the URL says, and says so.
	h2 := status.New(f, status.Options{Rows: 2})
	body = do(t, h2, http.MethodGet, "/", nil).Body.String()
	assert.Equal(t, []string{"cdn.example.com", "zeta.example.com"}, rowNames(body))
	assert.Contains(t, body, `showing the first 2 of 7 matching`)
	body = do(t, h2, http.MethodGet, "/?limit=3", nil).Body.String()
	assert.Len(t, rowNames(body), 3)
	assert.Contains(t, body, `<input type="hidden" name="limit" value="3">`)
}

// TestHistory checks what the handler records: transitions with their
// time, in a ring of KeepTransitions, the last failure's text bounded and
// escaped, nothing for quiet circuits, and nothing left of removed ones.
func TestHistory(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	h := status.New(f, status.Options{Now: clock.Now, Timeline: 10 * time.Minute})
	t.Cleanup(h.Close)
	b := f.Breaker("flappy", purgatory.Config{Threshold: 1, TTL: 10 * time.Second})
	f.Breaker("quiet", purgatory.Config{})

	long := strings.Repeat("é", 300) // 600 bytes
	fail := func(err error) { _ = b.Do(t.Context(), func(context.Context) error { return err }) }
	fail(errors.New(long))
	clock.Advance(10 * time.Second) // half-open
	fail(errors.New(`<b>503</b> Service Unavailable`))

	l := list(t, h, "/circuits?q=flappy")
	require.Len(t, l.Circuits, 1)
	c := l.Circuits[0]
	require.Len(t, c.Transitions, 3)
	assert.Equal(t, status.Transition{At: time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC), From: "closed", To: "open"}, c.Transitions[0])
	assert.Equal(t, status.Transition{At: time.Date(2026, 1, 2, 15, 0, 10, 0, time.UTC), From: "open", To: "half-open"}, c.Transitions[1])
	assert.Equal(t, status.Transition{At: time.Date(2026, 1, 2, 15, 0, 10, 0, time.UTC), From: "half-open", To: "open"}, c.Transitions[2])
	assert.Equal(t, c.Transitions[2].At, *c.LastTransition)
	require.NotNil(t, c.LastFailure)
	assert.Equal(t, `<b>503</b> Service Unavailable`, c.LastFailure.Error)

	// The page escapes the error text.
	body := do(t, h, http.MethodGet, "/", nil).Body.String()
	assert.Contains(t, body, `&lt;b&gt;503&lt;/b&gt; Service Unavailable</span>`)
	assert.NotContains(t, body, "<b>503")

	// The text is bounded, at a character boundary.
	clock.Advance(10 * time.Second)
	fail(errors.New(long))
	c = list(t, h, "/circuits?q=flappy").Circuits[0]
	assert.LessOrEqual(t, len(c.LastFailure.Error), status.MaxErrorText)
	assert.True(t, strings.HasSuffix(c.LastFailure.Error, "é…"), c.LastFailure.Error)

	// A ring: the last KeepTransitions only, oldest first.
	for range status.KeepTransitions {
		clock.Advance(10 * time.Second)
		fail(errDown) // half-open -> open
	}
	c = list(t, h, "/circuits?q=flappy").Circuits[0]
	require.Len(t, c.Transitions, status.KeepTransitions)
	for i := 1; i < len(c.Transitions); i++ {
		assert.False(t, c.Transitions[i].At.Before(c.Transitions[i-1].At))
	}
	assert.Equal(t, clock.Now(), c.Transitions[len(c.Transitions)-1].At)

	// A quiet circuit has no history; a removed one loses it.
	q := list(t, h, "/circuits?q=quiet").Circuits[0]
	assert.Empty(t, q.Transitions)
	assert.Nil(t, q.LastFailure)
	require.True(t, f.Remove("flappy"))
	b = f.Breaker("flappy", purgatory.Config{Threshold: 1, TTL: 10 * time.Second})
	c = list(t, h, "/circuits?q=flappy").Circuits[0]
	assert.Empty(t, c.Transitions)
	assert.Nil(t, c.LastFailure)

	// After Close, nothing more is recorded.
	h.Close()
	fail(errDown)
	c = list(t, h, "/circuits?q=flappy").Circuits[0]
	assert.Equal(t, "open", c.State)
	assert.Empty(t, c.Transitions)
}

// TestTimeline checks the page's timeline of a circuit: what the handler
// did not see is "unknown", then the states in order, as wide as they
// lasted.
func TestTimeline(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	b := f.Breaker("flappy", purgatory.Config{Threshold: 1, TTL: time.Minute})
	f.Breaker("quiet", purgatory.Config{})
	clock.Advance(5 * time.Minute)
	h := status.New(f, status.Options{Now: clock.Now, Timeline: 10 * time.Minute})
	clock.Advance(time.Minute)
	_ = b.Do(t.Context(), func(context.Context) error { return errDown }) // open at 15:06
	clock.Advance(time.Minute)                                            // half-open at 15:07
	clock.Advance(time.Minute)
	_ = b.Do(t.Context(), func(context.Context) error { return nil }) // closed at 15:08
	clock.Advance(2 * time.Minute)                                    // now 15:10

	body := do(t, h, http.MethodGet, "/?q=flappy", nil).Body.String()
	i := strings.Index(body, `<svg class="tl"`)
	require.Positive(t, i)
	svg := body[i : i+strings.Index(body[i:], "</svg>")]
	want := []string{
		`<rect x="0.0" y="0" width="500.0" height="10" class="f-unknown">`,
		`<rect x="500.0" y="0" width="100.0" height="10" class="f-closed"><title>closed 15:05:00–15:06:00 (1m)</title>`,
		`<rect x="600.0" y="0" width="100.0" height="10" class="f-open"><title>open 15:06:00–15:07:00 (1m)</title>`,
		`<rect x="700.0" y="0" width="100.0" height="10" class="f-half-open"><title>half-open 15:07:00–15:08:00 (1m)</title>`,
		`<rect x="800.0" y="0" width="200.0" height="10" class="f-closed"><title>closed 15:08:00–15:10:00 (2m)</title>`,
	}
	last := 0
	for _, w := range want {
		j := strings.Index(svg, w)
		require.GreaterOrEqual(t, j, last, "%s in order in\n%s", w, svg)
		last = j
	}
	assert.Equal(t, len(want), strings.Count(svg, "<rect"))
	assert.Contains(t, svg, `aria-label="states, oldest first: unknown, closed, open, half-open, closed"`)
	assert.Contains(t, body, `<td class="nowrap">15:08:00 UTC<span class="sub">2m ago</span></td>`)
}

// TestManyCircuits checks the JSON's filters over 10,000 circuits, as the
// benchmark serves them.
func TestManyCircuits(t *testing.T) {
	f, _ := many(t, 10_000)
	h := status.New(f, status.Options{})
	t.Cleanup(h.Close)
	l := list(t, h, "/circuits?state=open&limit=5")
	assert.Equal(t, 10_000, l.Total)
	assert.Equal(t, 10, l.Matched)
	assert.Equal(t, []string{"host-00000.example", "host-01000.example", "host-02000.example", "host-03000.example", "host-04000.example"}, names(l))
	l = list(t, h, "/circuits?q=host-0999")
	assert.Equal(t, 10, l.Matched)
	body := do(t, h, http.MethodGet, "/", nil).Body.String()
	assert.Len(t, rowNames(body), 200)
	assert.Contains(t, body, "showing the first 200 of 10,000 matching")
}

// many makes a factory with n circuits host-NNNNN.example, every 1000th
// open and every 1000th from the 500th isolated.
func many(tb testing.TB, n int) (*purgatory.Factory, []*purgatory.Breaker) {
	tb.Helper()
	f := purgatory.NewFactory()
	tb.Cleanup(func() { _ = f.Close() })
	bs := make([]*purgatory.Breaker, n)
	for i := range n {
		bs[i] = f.Breaker(fmt.Sprintf("host-%05d.example", i), purgatory.Config{})
		switch i % 1000 {
		case 0:
			bs[i].Open()
		case 500:
			bs[i].Isolate()
		}
	}
	return f, bs
}
