package status

import (
	"strconv"
	"strings"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// pageData is what the template renders.
type pageData struct {
	Title    string
	Refresh  time.Duration
	Controls bool
	Updated  string
	Timeline string // "10m"
	// The filter, as the request gave it.
	Q, State, Limit string
	StateOptions    []option
	Counts          []stateCount
	Total, Matched  int
	Rows            []row
}

type option struct {
	Value, Label string
	Selected     bool
}

type stateCount struct {
	State string
	N     int
}

// row is one circuit, formatted.
type row struct {
	Circuit
	Config         string
	Retry          string
	Ratio          string
	LastTransition string // "15:04:05 UTC"
	TransitionAgo  string // "2m ago"
	ErrText        string
	ErrAgo         string
	Segments       []segment
	TimelineLabel  string
}

// segment is a stretch of a timeline, in the SVG's units (0 to 1000).
type segment struct {
	X, W  string
	State string // a state, or "unknown"
	Title string
}

func (h *Handler) pageData(l List, qu query) pageData {
	d := pageData{
		Title: h.opts.Title, Refresh: h.opts.Refresh, Controls: l.Controls,
		Updated:  l.Time.Format("15:04:05 UTC"),
		Timeline: shortDuration(h.opts.Timeline),
		Q:        qu.raw.q, State: qu.raw.state, Limit: qu.raw.limit,
		Total: l.Total, Matched: l.Matched,
	}
	for _, o := range []option{
		{Value: "", Label: "every state"},
		{Value: "open,half-open,isolated", Label: "not closed"},
		{Value: "open", Label: "open"},
		{Value: "half-open", Label: "half-open"},
		{Value: "isolated", Label: "isolated"},
		{Value: "closed", Label: "closed"},
	} {
		o.Selected = o.Value == qu.raw.state
		d.StateOptions = append(d.StateOptions, o)
	}
	if qu.raw.state != "" && !isOption(d.StateOptions, qu.raw.state) {
		d.StateOptions = append(d.StateOptions, option{Value: qu.raw.state, Label: qu.raw.state, Selected: true})
	}
	for _, s := range states {
		d.Counts = append(d.Counts, stateCount{State: s.String(), N: l.States[s.String()]})
	}
	now := l.Time
	start := now.Add(-h.opts.Timeline)
	started := time.Unix(0, h.rec.started).UTC()
	for _, c := range l.Circuits {
		r := row{Circuit: c, Config: formatConfig(c.Config), Retry: formatRetry(c), Ratio: formatRatio(c.FailureRatio)}
		if c.LastTransition != nil {
			r.LastTransition = c.LastTransition.Format("15:04:05 UTC")
			r.TransitionAgo = ago(now.Sub(*c.LastTransition))
		}
		if c.LastFailure != nil {
			r.ErrText = c.LastFailure.Error
			r.ErrAgo = ago(now.Sub(c.LastFailure.At))
		}
		known := started
		if c.horizon.After(known) {
			known = c.horizon
		}
		r.Segments = timeline(c, known, start, now)
		r.TimelineLabel = timelineLabel(r.Segments)
		d.Rows = append(d.Rows, r)
	}
	return d
}

func isOption(opts []option, v string) bool {
	for _, o := range opts {
		if o.Value == v {
			return true
		}
	}
	return false
}

// timeline cuts [start, now] into the circuit's states; before known, what
// the handler did not see, it is "unknown".
func timeline(c Circuit, known, start, now time.Time) []segment {
	span := now.Sub(start)
	if span <= 0 {
		return nil
	}
	var out []segment
	emit := func(state string, from, to time.Time) {
		if from.Before(start) {
			from = start
		}
		if to.After(now) {
			to = now
		}
		if !to.After(from) {
			return
		}
		x := float64(from.Sub(start)) / float64(span) * 1000
		w := float64(to.Sub(from)) / float64(span) * 1000
		title := state + " " + from.Format("15:04:05") + "–" + to.Format("15:04:05") + " (" + shortDuration(to.Sub(from)) + ")"
		if state == "unknown" {
			title = "not seen: before the status page started or before the oldest transition kept"
		}
		out = append(out, segment{X: strconv.FormatFloat(x, 'f', 1, 64), W: strconv.FormatFloat(w, 'f', 1, 64), State: state, Title: title})
	}
	cur := start
	if known.After(start) {
		emit("unknown", start, known)
		cur = known
	}
	trs := c.Transitions
	i := 0
	for i < len(trs) && !trs[i].At.After(cur) {
		i++
	}
	st := c.State
	if i < len(trs) {
		st = trs[i].From
	}
	for ; i < len(trs); i++ {
		emit(st, cur, trs[i].At)
		cur, st = trs[i].At, trs[i].To
	}
	emit(c.State, cur, now) // the state now, should the last event still be on its way
	return out
}

func timelineLabel(segs []segment) string {
	var parts []string
	for _, s := range segs {
		parts = append(parts, s.State)
	}
	return "states, oldest first: " + strings.Join(parts, ", ")
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func formatRatio(r *float64) string {
	if r == nil {
		return ""
	}
	return strconv.FormatFloat(*r*100, 'f', 1, 64) + "% failed"
}

func formatRetry(c Circuit) string {
	switch c.State {
	case purgatory.Open.String():
		return "retry in " + seconds(c.RetryAfterSeconds).Round(100*time.Millisecond).String()
	case purgatory.HalfOpen.String():
		return "trial calls"
	case purgatory.Isolated.String():
		return "until an operator closes it"
	}
	return ""
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

// shortDuration writes d as "10m", "1m30s", "45s", "2h".
func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ago writes d as "just now", "12s ago", "3m ago", "2h ago", "4d ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

// thousands writes n with thin separators: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
