// Package status serves a live status page of a purgatory factory's
// circuits, as HTML for people and JSON for programs, with optional manual
// controls. It is made for thousands of circuits (one per host or per key):
// the page shows the circuits that are not closed first, filters by name and
// state on the server, and shows at most Options.Rows of them at a time.
//
// Mount the handler where you like, stripping the prefix:
//
//	mux.Handle("/circuits/", http.StripPrefix("/circuits", status.New(factory, status.Options{})))
//
// Routes, relative to where it is mounted:
//
//	GET  /                             the page (same query parameters as the JSON)
//	GET  /circuits                     the circuits as JSON (see below)
//	POST /circuits/{name}/open         open the circuit    (runtime.Breaker.Open)
//	POST /circuits/{name}/close        close the circuit   (runtime.Breaker.Close)
//	POST /circuits/{name}/isolate      isolate the circuit (runtime.Breaker.Isolate)
//
// Other methods get 405 Method Not Allowed. GET never changes a circuit.
//
// # Order and filters
//
// Circuits come open first, then half-open, then isolated, then closed, and
// by name within each state. Both GET routes take these query parameters:
//
//	state=open,half-open   only circuits in one of these states (closed, open, half-open, isolated)
//	q=text                 only circuits whose name contains text (ignoring case)
//	limit=N                at most N circuits, the first N in the order above
//
// The JSON has no limit unless asked; the page shows Options.Rows (200) unless
// asked. A bad parameter is 400 Bad Request, saying which.
//
// # The page
//
// A header counts the circuits per state (all of them, whatever the filter);
// the table shows, per circuit, its state and retry time, a timeline of its
// states over the last Options.Timeline (10 minutes), the time of its last
// transition, its consecutive failures and failure ratio, the text of its
// last failure, its calls by outcome, its configuration and, with an
// authorizer, the controls. The page has no external assets; a small inline
// script polls it (every Options.Refresh) and swaps the table in place, so it
// stays live without a reload, and the name filter applies as you type and
// survives the refreshes (it is kept in the URL too). Without JavaScript the
// page is a plain table with a filter form that refreshes itself every few
// seconds.
//
// # Fleet and process
//
// With a shared store (Redis) several processes share each circuit. What
// comes from the store is the fleet's: the state, the retry time, the
// consecutive failures and the failure ratio (window totals as last merged,
// plus this process's calls not merged yet). What this process counts is
// its own: the calls by outcome, the last failure's text, and the
// timeline and last transition time, which are the fleet's states as this
// process saw them change, by its clock. The page marks each column with
// "fleet" or "this process"; with no store given to the factory, the fleet
// is this process.
//
// # Memory
//
// The runtime keeps no history, so the handler listens to the factory
// (Factory.AddListener) from New on and keeps, per circuit that changed
// state or failed, a ring of its last KeepTransitions (32) transitions, 16
// bytes each, and its last failure's text, at most MaxErrorText (200) bytes:
// under 1 KiB per circuit (915–935 bytes measured by BenchmarkHistoryBytes
// for a circuit that filled its ring), nothing for a circuit that has been
// closed and quiet since the handler was made (3 bytes measured), dropped
// when the circuit is removed.
// The timeline shows as "not seen" what came before the handler was made,
// or before the oldest transition kept. Handler.Close removes the listener.
// A failed call costs its caller, for the listener, its error's Error() and
// a short lock of that circuit's history; other events return at once.
//
// # Controls
//
// The controls are off unless Options.Authorize is set, and then a POST is
// carried out only if Authorize returns true for it; otherwise the answer is
// 403 Forbidden. Cross-site requests are refused with 403 as well: a request
// whose Sec-Fetch-Site header is present and is neither "same-origin" nor
// "none", or that has no Sec-Fetch-Site but an Origin header whose host is
// not the request's Host. (Clients that are not browsers, such as curl, send
// neither and pass, subject to Authorize.) A page on another site whose name
// was rebound to your server's address (DNS rebinding) is same-origin to the
// browser: an authorizer that trusts the peer's address must also check the
// Host header (see examples/dashboard). A POST that asks for JSON (Accept:
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
//	  "total": 10000,                        // circuits in the factory
//	  "states": {"closed": 9990, "open": 6, "half-open": 1, "isolated": 3}, // all of them, per state
//	  "matched": 7,                          // circuits the filter matched, before the limit
//	  "circuits": [                          // in the order above
//	    {
//	      "name": "payments",
//	      "state": "open",                   // closed, open, half-open or isolated (fleet)
//	      "seq": 7,                          // grows with every change of the circuit
//	      "consecutive_failures": 0,         // fleet
//	      "calls": 0, "failed": 0,           // rate circuits: the window's totals (fleet)
//	      "failure_ratio": null,             // failed/calls, null without a failure-rate policy
//	      "opened_at": "2026-...Z",          // null while closed
//	      "until": "2026-...Z",              // open: when it may turn half-open; half-open: end of the trials' lease; else null
//	      "retry_after_seconds": 12.5,       // time left while open, else 0
//	      "last_transition": "2026-...Z",    // the last change seen by this process, null if none
//	      "transitions": [                   // the last ones seen (at most 32), oldest first
//	        {"at": "2026-...Z", "from": "closed", "to": "open"}
//	      ],
//	      "last_failure": {"error": "503 Service Unavailable", "at": "2026-...Z"}, // this process's; null if none
//	      "config": {"threshold": 5, "ttl_seconds": 30, "trials": 1, "failure_rate": 0,
//	                 "window_seconds": 0, "min_calls": 0, "slow_call_seconds": 0,
//	                 "max_ttl_seconds": 0, "excludes": 1},
//	      "counts": {"success": 10, "failure": 3, "excluded": 1, "ignored": 0,
//	                 "rejected": 4, "store_errors": 0}   // this process's
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
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// Rows is how many circuits the page shows unless its URL says
	// (limit=N); zero means 200.
	Rows int
	// Timeline is how far back the page's timelines go; zero means 10
	// minutes.
	Timeline time.Duration
	// Now tells the time of the transitions and failures recorded; nil
	// means time.Now. Tests with a fake clock pass its Now.
	Now func() time.Time
}

// Handler is the status page's http.Handler. Make it with New.
type Handler struct {
	factory *purgatory.Factory
	opts    Options
	mux     *http.ServeMux
	rec     *recorder
	remove  func()

	mu      sync.Mutex
	all     []*purgatory.Breaker // the factory's breakers by name, as of members
	members uint64
	fresh   bool
}

// breakers returns the factory's breakers sorted by name. Sorting 10,000
// names is most of a request's cost, so the list is kept until a circuit is
// created or removed. (The recorder counts those events after the factory
// made the change, so a list taken after reading the count is never older
// than the count says.) After Close it is taken afresh every time.
func (h *Handler) breakers() []*purgatory.Breaker {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.rec.members.Load()
	if h.fresh && m == h.members && !h.rec.closed.Load() {
		return h.all
	}
	h.all, h.members, h.fresh = h.factory.Breakers(), m, true
	return h.all
}

// New returns a handler of f's circuits, present and future. It listens to
// f from now on (see Memory in the package documentation); Close stops it.
func New(f *purgatory.Factory, opts Options) *Handler {
	f.CountCalls()
	if opts.Refresh <= 0 {
		opts.Refresh = time.Second
	}
	if opts.Title == "" {
		opts.Title = "Circuits"
	}
	if opts.Rows <= 0 {
		opts.Rows = 200
	}
	if opts.Timeline <= 0 {
		opts.Timeline = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{factory: f, opts: opts, mux: http.NewServeMux()}
	h.rec = &recorder{f: f, now: opts.Now, started: opts.Now().UnixNano()}
	h.remove = f.AddListener(h.rec)
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

// Close stops recording transitions and failures: the handler still serves,
// with the history it has. It is idempotent.
func (h *Handler) Close() {
	h.rec.closed.Store(true)
	h.remove()
}

// ServeHTTP serves the routes listed in the package documentation.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Circuit is one circuit in the JSON answer; see the package documentation
// for the schema.
type Circuit struct {
	Name                string       `json:"name"`
	State               string       `json:"state"`
	Seq                 uint64       `json:"seq"`
	ConsecutiveFailures int          `json:"consecutive_failures"`
	Calls               int          `json:"calls"`
	Failed              int          `json:"failed"`
	FailureRatio        *float64     `json:"failure_ratio"`
	OpenedAt            *time.Time   `json:"opened_at"`
	Until               *time.Time   `json:"until"`
	RetryAfterSeconds   float64      `json:"retry_after_seconds"`
	LastTransition      *time.Time   `json:"last_transition"`
	Transitions         []Transition `json:"transitions"`
	LastFailure         *Failure     `json:"last_failure"`
	Config              Config       `json:"config"`
	Counts              Counts       `json:"counts"`

	horizon time.Time // before it the handler lost or never saw transitions
}

// Transition is one state change of a circuit, as this process saw it.
type Transition struct {
	At   time.Time `json:"at"`
	From string    `json:"from"`
	To   string    `json:"to"`
}

// Failure is the last failure of a circuit's calls in this process: its
// error's text (at most MaxErrorText bytes) and when it happened.
type Failure struct {
	Error string    `json:"error"`
	At    time.Time `json:"at"`
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
	Time     time.Time      `json:"time"`
	Controls bool           `json:"controls"`
	Total    int            `json:"total"`
	States   map[string]int `json:"states"`
	Matched  int            `json:"matched"`
	Circuits []Circuit      `json:"circuits"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// circuitOf converts a runtime status and what the recorder knows.
func circuitOf(s purgatory.Status, v view) Circuit {
	c := Circuit{
		Name: s.Name, State: s.State.String(), Seq: s.Seq,
		ConsecutiveFailures: s.Failures, Calls: s.Calls, Failed: s.Failed,
		OpenedAt: timePtr(s.OpenedAt), Until: timePtr(s.Until),
		RetryAfterSeconds: s.RetryAfter.Seconds(),
		Transitions:       []Transition{},
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
	for _, t := range v.transitions {
		c.Transitions = append(c.Transitions, Transition{At: time.Unix(0, t.at).UTC(), From: t.from.String(), To: t.to.String()})
	}
	if n := len(c.Transitions); n > 0 {
		c.LastTransition = &c.Transitions[n-1].At
	} else if c.OpenedAt != nil {
		c.LastTransition = c.OpenedAt // before the handler was made
	}
	if v.horizon != 0 {
		c.horizon = time.Unix(0, v.horizon).UTC()
	}
	if v.errAt != 0 {
		c.LastFailure = &Failure{Error: v.errText, At: time.Unix(0, v.errAt).UTC()}
	}
	return c
}

// states in the page's order: not closed first.
var states = []purgatory.State{purgatory.Open, purgatory.HalfOpen, purgatory.Isolated, purgatory.Closed}

func rank(s purgatory.State) int {
	for i, x := range states {
		if x == s {
			return i
		}
	}
	return len(states)
}

// query is a request's filter.
type query struct {
	states []purgatory.State // none: every state
	q      string
	limit  int // 0: none
	raw    struct{ state, q, limit string }
}

func parseQuery(r *http.Request, defaultLimit int) (query, error) {
	var qu query
	v := r.URL.Query()
	qu.raw.state, qu.raw.q, qu.raw.limit = v.Get("state"), v.Get("q"), v.Get("limit")
	qu.q = strings.TrimSpace(qu.raw.q)
	qu.limit = defaultLimit
	if qu.raw.limit != "" {
		n, err := strconv.Atoi(qu.raw.limit)
		if err != nil || n < 0 {
			return qu, fmt.Errorf("bad limit %q: want a whole number >= 0 (0: no limit)", qu.raw.limit)
		}
		qu.limit = n
	}
	for _, name := range strings.Split(qu.raw.state, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, s := range states {
			if s.String() == name {
				qu.states, found = append(qu.states, s), true
			}
		}
		if !found {
			return qu, fmt.Errorf("bad state %q: want closed, open, half-open or isolated (comma-separated)", name)
		}
	}
	return qu, nil
}

func (qu *query) match(name string, s purgatory.State) bool {
	if len(qu.states) > 0 && !slices.Contains(qu.states, s) {
		return false
	}
	return qu.q == "" || containsFold(name, qu.q)
}

// containsFold reports whether sub is in s, ignoring case, without
// allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// snapshot takes the circuits qu asks for. The counts per state are over
// every circuit; the statuses are taken of the circuits shown only.
func (h *Handler) snapshot(qu query) List {
	l := List{Time: h.opts.Now().UTC(), Controls: h.opts.Authorize != nil, States: map[string]int{}, Circuits: []Circuit{}}
	for _, s := range states {
		l.States[s.String()] = 0
	}
	type pick struct {
		b *purgatory.Breaker
		s purgatory.State
	}
	all := h.breakers()
	var counts [8]int
	picked := make([]pick, 0, min(len(all), max(qu.limit, 64)))
	for _, b := range all {
		s := b.State()
		if int(s) < len(counts) {
			counts[s]++
		}
		if qu.match(b.Name(), s) {
			picked = append(picked, pick{b, s})
		}
	}
	for _, s := range states {
		if int(s) < len(counts) {
			l.States[s.String()] = counts[s]
		}
	}
	l.Total, l.Matched = len(all), len(picked)
	// Breakers come sorted by name: a stable sort by state keeps that order
	// within each state.
	slices.SortStableFunc(picked, func(a, b pick) int { return rank(a.s) - rank(b.s) })
	if qu.limit > 0 && len(picked) > qu.limit {
		picked = picked[:qu.limit]
	}
	for _, p := range picked {
		v, _ := h.rec.lookup(p.b.Name())
		l.Circuits = append(l.Circuits, circuitOf(p.b.Status(), v))
	}
	if h.rec.n.Load() > int64(len(all)) {
		h.rec.prune()
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
	qu, err := parseQuery(r, 0)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, h.snapshot(qu))
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	qu, err := parseQuery(r, h.opts.Rows)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	l := h.snapshot(qu)
	_ = pageTmpl.Execute(w, h.pageData(l, qu))
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
		v, _ := h.rec.lookup(b.Name())
		writeJSON(w, http.StatusOK, circuitOf(b.Status(), v))
		return
	}
	// From .../circuits/{name}/{action} back to the page.
	// (http.Redirect would resolve it against the path as this handler sees
	// it, wrong under http.StripPrefix; the browser resolves it right.)
	w.Header().Set("Location", "../../")
	w.WriteHeader(http.StatusSeeOther)
}

//go:embed page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"path": url.PathEscape,
	"num":  thousands,
}).ParseFS(pageFS, "page.html"))
