// Package status serves a live status page of a purgatory factory's
// circuits, as HTML for people and JSON for programs, with optional manual
// controls.
//
// Mount the handler where you like, stripping the prefix:
//
//	mux.Handle("/circuits/", http.StripPrefix("/circuits", status.New(factory, status.Options{})))
//
// Routes, relative to where it is mounted:
//
//	GET  /                             the page
//	GET  /circuits                     the circuits as JSON (see below)
//	POST /circuits/{name}/open         open the circuit    (runtime.Breaker.Open)
//	POST /circuits/{name}/close        close the circuit   (runtime.Breaker.Close)
//	POST /circuits/{name}/isolate      isolate the circuit (runtime.Breaker.Isolate)
//
// Other methods get 405 Method Not Allowed. GET never changes a circuit.
//
// The page is a plain HTML table (name, state in colour and in words,
// consecutive failures, failure ratio for rate circuits, opened at, retry
// after, configuration, counts) with no external assets; a small inline
// script polls the page and replaces the table in place, so it stays live
// without a reload, and without JavaScript it refreshes itself every few
// seconds.
//
// # Controls
//
// The controls are off unless Options.Authorize is set, and then a POST is
// carried out only if Authorize returns true for it; otherwise the answer is
// 403 Forbidden. Cross-site requests are refused with 403 as well: a request
// whose Sec-Fetch-Site header is present and is neither "same-origin" nor
// "none", or that has no Sec-Fetch-Site but an Origin header whose host is
// not the request's Host. (Clients that are not browsers, such as curl, send
// neither and pass, subject to Authorize.) A POST that asks for JSON (Accept:
// application/json) gets the circuit's new status as JSON; any other gets
// 303 See Other back to the page, so the page's buttons work without
// JavaScript too. An unknown circuit is 404, an unknown action 404.
//
// # JSON
//
// GET /circuits answers with an object:
//
//	{
//	  "time": "2026-01-02T15:04:05.999Z",   // when the status was taken (RFC 3339)
//	  "controls": true,                      // whether Options.Authorize is set
//	  "circuits": [                          // every circuit, sorted by name
//	    {
//	      "name": "payments",
//	      "state": "open",                   // closed, open, half-open or isolated
//	      "seq": 7,                          // grows with every change of the circuit
//	      "consecutive_failures": 0,
//	      "calls": 0, "failed": 0,           // rate circuits: the window's totals
//	      "failure_ratio": null,             // failed/calls, null without a failure-rate policy
//	      "opened_at": "2026-...Z",          // null while closed
//	      "until": "2026-...Z",              // open: when it may turn half-open; half-open: end of the trials' lease; else null
//	      "retry_after_seconds": 12.5,       // time left while open, else 0
//	      "config": {"threshold": 5, "ttl_seconds": 30, "trials": 1, "failure_rate": 0,
//	                 "window_seconds": 0, "min_calls": 0, "slow_call_seconds": 0,
//	                 "max_ttl_seconds": 0, "excludes": 1},
//	      "counts": {"success": 10, "failure": 3, "excluded": 1, "ignored": 0,
//	                 "rejected": 4, "store_errors": 0}
//	    }
//	  ]
//	}
//
// New turns on the factory's call counting (runtime.Factory.CountCalls) so
// that the counts include successes and rejections.
package status

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// Options configure a status handler.
type Options struct {
	// Authorize, if set, turns on the controls: a POST that changes a
	// circuit is carried out only if Authorize returns true for it. Nil
	// means no controls: every POST is refused with 403.
	Authorize func(*http.Request) bool
	// Refresh is how often the page polls for news; zero means every
	// second.
	Refresh time.Duration
	// Title is the page's title; empty means "Circuits".
	Title string
}

// Handler is the status page's http.Handler. Make it with New.
type Handler struct {
	factory *purgatory.Factory
	opts    Options
	mux     *http.ServeMux
}

// New returns a handler of f's circuits, present and future.
func New(f *purgatory.Factory, opts Options) *Handler {
	f.CountCalls()
	if opts.Refresh <= 0 {
		opts.Refresh = time.Second
	}
	if opts.Title == "" {
		opts.Title = "Circuits"
	}
	h := &Handler{factory: f, opts: opts, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /circuits", h.list)
	h.mux.HandleFunc("POST /circuits/{name}/{action}", h.control)
	// Routes that exist for other methods answer 405 through the mux; make
	// sure a control route says so for GET too (rather than 404).
	h.mux.HandleFunc("/circuits/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	})
	return h
}

// ServeHTTP serves the routes listed in the package documentation.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Circuit is one circuit in the JSON answer; see the package documentation
// for the schema.
type Circuit struct {
	Name                string     `json:"name"`
	State               string     `json:"state"`
	Seq                 uint64     `json:"seq"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Calls               int        `json:"calls"`
	Failed              int        `json:"failed"`
	FailureRatio        *float64   `json:"failure_ratio"`
	OpenedAt            *time.Time `json:"opened_at"`
	Until               *time.Time `json:"until"`
	RetryAfterSeconds   float64    `json:"retry_after_seconds"`
	Config              Config     `json:"config"`
	Counts              Counts     `json:"counts"`
}

// Config is a circuit's configuration in the JSON answer; durations are in
// seconds.
type Config struct {
	Threshold       int     `json:"threshold"`
	TTLSeconds      float64 `json:"ttl_seconds"`
	Trials          int     `json:"trials"`
	FailureRate     float64 `json:"failure_rate"`
	WindowSeconds   float64 `json:"window_seconds"`
	MinCalls        int     `json:"min_calls"`
	SlowCallSeconds float64 `json:"slow_call_seconds"`
	MaxTTLSeconds   float64 `json:"max_ttl_seconds"`
	Excludes        int     `json:"excludes"` // how many exclude matchers the circuit has
}

// Counts are a circuit's call outcomes in this process in the JSON answer
// (see runtime.Counts).
type Counts struct {
	Success     uint64 `json:"success"`
	Failure     uint64 `json:"failure"`
	Excluded    uint64 `json:"excluded"`
	Ignored     uint64 `json:"ignored"`
	Rejected    uint64 `json:"rejected"`
	StoreErrors uint64 `json:"store_errors"`
}

// List is the JSON answer of GET /circuits.
type List struct {
	Time     time.Time `json:"time"`
	Controls bool      `json:"controls"`
	Circuits []Circuit `json:"circuits"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// circuitOf converts a runtime status.
func circuitOf(s purgatory.Status) Circuit {
	c := Circuit{
		Name: s.Name, State: s.State.String(), Seq: s.Seq,
		ConsecutiveFailures: s.Failures, Calls: s.Calls, Failed: s.Failed,
		OpenedAt: timePtr(s.OpenedAt), Until: timePtr(s.Until),
		RetryAfterSeconds: s.RetryAfter.Seconds(),
		Config: Config{
			Threshold: s.Config.Threshold, TTLSeconds: s.Config.TTL.Seconds(), Trials: s.Config.Trials,
			FailureRate: s.Config.FailureRate, WindowSeconds: s.Config.Window.Seconds(), MinCalls: s.Config.MinCalls,
			SlowCallSeconds: s.Config.SlowCall.Seconds(), MaxTTLSeconds: s.Config.MaxTTL.Seconds(),
			Excludes: len(s.Config.Exclude),
		},
		Counts: Counts{
			Success: s.Counts.Success, Failure: s.Counts.Failure, Excluded: s.Counts.Excluded,
			Ignored: s.Counts.Ignored, Rejected: s.Counts.Rejected, StoreErrors: s.Counts.StoreErrors,
		},
	}
	if s.Config.FailureRate > 0 {
		r := s.FailureRatio
		c.FailureRatio = &r
	}
	return c
}

func (h *Handler) snapshot() List {
	l := List{Time: time.Now().UTC(), Controls: h.opts.Authorize != nil, Circuits: []Circuit{}}
	for _, b := range h.factory.Breakers() {
		l.Circuits = append(l.Circuits, circuitOf(b.Status()))
	}
	return l
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.snapshot())
}

//go:embed page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"path":   url.PathEscape,
	"ratio":  formatRatio,
	"clock":  formatClock,
	"retry":  formatRetry,
	"config": formatConfig,
}).ParseFS(pageFS, "page.html"))

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func formatRatio(r *float64) string {
	if r == nil {
		return "—"
	}
	return strconv.FormatFloat(*r*100, 'f', 1, 64) + "%"
}

func formatClock(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.Format("15:04:05 UTC")
}

func formatRetry(c Circuit) string {
	switch c.State {
	case purgatory.Open.String():
		return seconds(c.RetryAfterSeconds).Round(100 * time.Millisecond).String()
	case purgatory.Isolated.String():
		return "when an operator closes it"
	}
	return "—"
}

func formatConfig(c Config) string {
	var parts []string
	if c.Threshold > 0 {
		parts = append(parts, "threshold "+strconv.Itoa(c.Threshold))
	}
	if c.FailureRate > 0 {
		parts = append(parts, "rate "+strconv.FormatFloat(c.FailureRate*100, 'f', -1, 64)+"% over "+
			seconds(c.WindowSeconds).String()+" (min "+strconv.Itoa(c.MinCalls)+" calls)")
	}
	parts = append(parts, "ttl "+seconds(c.TTLSeconds).String())
	if c.MaxTTLSeconds > c.TTLSeconds {
		parts = append(parts, "up to "+seconds(c.MaxTTLSeconds).String())
	}
	parts = append(parts, "trials "+strconv.Itoa(c.Trials))
	if c.SlowCallSeconds > 0 {
		parts = append(parts, "slow "+seconds(c.SlowCallSeconds).String())
	}
	if c.Excludes > 0 {
		parts = append(parts, "excludes "+strconv.Itoa(c.Excludes))
	}
	return strings.Join(parts, " · ")
}

// pageData is what the template renders.
type pageData struct {
	Title    string
	Refresh  time.Duration
	Controls bool
	List     List
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	l := h.snapshot()
	_ = pageTmpl.Execute(w, pageData{Title: h.opts.Title, Refresh: h.opts.Refresh, Controls: l.Controls, List: l})
}

// crossSite reports whether a browser sent r from another site.
func crossSite(r *http.Request) bool {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin", "none":
		return false
	case "":
		origin := r.Header.Get("Origin")
		if origin == "" {
			return false // not a browser, or a browser too old to say
		}
		u, err := url.Parse(origin)
		return err != nil || u.Host != r.Host
	default:
		return true
	}
}

func (h *Handler) control(w http.ResponseWriter, r *http.Request) {
	if h.opts.Authorize == nil {
		http.Error(w, "controls are off", http.StatusForbidden)
		return
	}
	if crossSite(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	if !h.opts.Authorize(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	var act func(*purgatory.Breaker)
	switch r.PathValue("action") {
	case "open":
		act = (*purgatory.Breaker).Open
	case "close":
		act = (*purgatory.Breaker).Close
	case "isolate":
		act = (*purgatory.Breaker).Isolate
	default:
		http.NotFound(w, r)
		return
	}
	b, ok := h.factory.Lookup(r.PathValue("name"))
	if !ok {
		http.Error(w, "no such circuit", http.StatusNotFound)
		return
	}
	act(b)
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, circuitOf(b.Status()))
		return
	}
	// From .../circuits/{name}/{action} back to the page.
	// (http.Redirect would resolve it against the path as this handler sees
	// it, wrong under http.StripPrefix; the browser resolves it right.)
	w.Header().Set("Location", "../../")
	w.WriteHeader(http.StatusSeeOther)
}
