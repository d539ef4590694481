package observe_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	purgatoryprom "github.com/purgatory-go/purgatory/observe/prometheus"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// scrape serves a collector over circuits of every kind (a plain circuit
// that tripped, a rate circuit, a keyed group) with promhttp on a loopback
// port and parses what a GET of it returns.
func scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	clock := clocktest.New(time.Unix(0, 0))
	f := purgatory.NewFactory(purgatory.WithClock(clock))
	t.Cleanup(func() { _ = f.Close() })
	c := purgatoryprom.NewCollector(f)
	t.Cleanup(c.Close)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	down := func(context.Context) error { return errors.New("down") }
	pay := f.Breaker("payments", purgatory.Config{Threshold: 1})
	require.Error(t, pay.Do(context.Background(), down))
	f.Breaker("search", purgatory.Config{FailureRate: 0.5})
	require.Error(t, f.Group("hosts", purgatory.Config{}).Breaker("example.com").Do(context.Background(), down))

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// promqlWords are the PromQL functions, aggregations and keywords the
// shipped queries may use.
var promqlWords = []string{
	"sum", "max", "min", "avg", "count", "topk", "bottomk", "by", "without", "on", "ignoring",
	"group_left", "group_right", "and", "or", "unless", "rate", "increase", "irate", "delta",
	"changes", "resets", "max_over_time", "min_over_time", "avg_over_time", "label_values",
	"offset", "bool", "clamp_min", "clamp_max", "abs", "time", "vector", "scalar",
}

var (
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	block       = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\{([^}]*)\}`)
	matcher     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	ranges      = regexp.MustCompile(`\[[^\]]*\]`)
	grouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
)

// selector is one metric a query reads, with its label matchers.
type selector struct {
	metric   string
	matchers [][3]string // name, operator, value
}

// selectors returns the metrics a PromQL query (or a Grafana
// label_values(query, label) variable) reads, with their matchers: names
// before a matcher block or bare, and those a __name__ matcher lists (a|b).
func selectors(t *testing.T, expr string) []selector {
	var out []selector
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		for _, s := range selectors(t, m[1]) {
			s.matchers = append(s.matchers, [3]string{m[2], "!=", ""})
			out = append(out, s)
		}
		return out
	}
	rest := block.ReplaceAllStringFunc(expr, func(b string) string {
		m := block.FindStringSubmatch(b)
		var names []string
		if m[1] != "" {
			names = append(names, m[1])
		}
		var ms [][3]string
		for _, mm := range matcher.FindAllStringSubmatch(m[2], -1) {
			if mm[1] == "__name__" {
				require.Contains(t, []string{"=", "=~"}, mm[2], "%s: __name__%s", expr, mm[2])
				names = append(names, strings.Split(mm[3], "|")...)
				continue
			}
			ms = append(ms, [3]string{mm[1], mm[2], mm[3]})
		}
		require.NotEmpty(t, names, "%s: a selector without a metric name", expr)
		for _, name := range names {
			out = append(out, selector{metric: name, matchers: ms})
		}
		return " "
	})
	rest = stringLit.ReplaceAllString(rest, " ")
	rest = ranges.ReplaceAllString(rest, " ")
	rest = grouping.ReplaceAllString(rest, " ")
	for _, word := range identifier.FindAllString(rest, -1) {
		if !slices.Contains(promqlWords, word) {
			out = append(out, selector{metric: word})
		}
	}
	return out
}

// checkQuery checks that every metric expr reads is one the scrape has,
// and that each label matcher names a label of it (or the target's job
// and instance) and, for a literal equality, a value the scrape has.
func checkQuery(t *testing.T, where, expr string, families map[string]*dto.MetricFamily) {
	t.Helper()
	for _, p := range queryProblems(t, expr, families) {
		t.Errorf("%s: %q %s", where, expr, p)
	}
}

// queryProblems returns what is wrong with expr for checkQuery.
func queryProblems(t *testing.T, expr string, families map[string]*dto.MetricFamily) []string {
	sels := selectors(t, expr)
	if len(sels) == 0 {
		return []string{"reads no metric"}
	}
	var problems []string
	for _, s := range sels {
		mf, ok := families[s.metric]
		if !ok {
			problems = append(problems, "reads "+s.metric+", which the collector does not export")
			continue
		}
		values := map[string]map[string]bool{"job": nil, "instance": nil}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if values[l.GetName()] == nil {
					values[l.GetName()] = map[string]bool{}
				}
				values[l.GetName()][l.GetValue()] = true
			}
		}
		for _, m := range s.matchers {
			vals, ok := values[m[0]]
			if !ok {
				problems = append(problems, "matches label "+m[0]+", which "+s.metric+" does not have")
				continue
			}
			if m[1] == "=" || m[1] == "!=" {
				if vals != nil && m[2] != "" && !strings.Contains(m[2], "$") && !vals[m[2]] {
					problems = append(problems, "matches "+m[0]+"=\""+m[2]+"\", a value "+s.metric+" never has")
				}
			}
		}
	}
	return problems
}

// TestQueryChecker checks that the checker above finds what it is for.
func TestQueryChecker(t *testing.T) {
	families := scrape(t)
	for expr, want := range map[string]string{
		`sum(purgatory_circuits{state="open"})`:                                     "",
		`rate({__name__=~"purgatory_calls_total|purgatory_group_calls_total"}[5m])`: "",
		`label_values(purgatory_circuit_state, circuit)`:                            "",
		`sum(purgatory_circuit_states{state="open"})`:                               "reads purgatory_circuit_states, which the collector does not export",
		`rate({__name__=~"purgatory_calls_total|purgatory_call_total"}[5m])`:        "reads purgatory_call_total, which the collector does not export",
		`sum by (circuit) (purgatory_circuits{state="open"})`:                       "",
		`purgatory_circuits{stat="open"}`:                                           "matches label stat, which purgatory_circuits does not have",
		`purgatory_circuit_state{state="halfopen"}`:                                 `matches state="halfopen", a value purgatory_circuit_state never has`,
		`label_values(purgatory_circuit_state, group)`:                              "matches label group, which purgatory_circuit_state does not have",
		`up == 0`: "reads up, which the collector does not export",
	} {
		got := queryProblems(t, expr, families)
		if want == "" {
			require.Empty(t, got, expr)
		} else {
			require.Equal(t, []string{want}, got, expr)
		}
	}
}

// dashboardQuery is one query of the shipped dashboard, and where it is.
type dashboardQuery struct{ where, expr string }

// dashboardQueries parses the shipped Grafana dashboard and returns every
// query in it: panel targets and query variables.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	raw, err := os.ReadFile("grafana/purgatory-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.UID)
	var out []dashboardQuery
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, target := range p.Targets {
			out = append(out, dashboardQuery{"panel " + p.Title, target.Expr})
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			out = append(out, dashboardQuery{"variable " + v.Name, v.Definition})
		}
	}
	require.Greater(t, len(out), 10)
	return out
}

// TestDashboardQueriesMatchTheCollector checks that every query (and
// template variable) of the shipped Grafana dashboard reads series the
// collector really exports, against a scrape of it.
func TestDashboardQueriesMatchTheCollector(t *testing.T) {
	families := scrape(t)
	queries := dashboardQueries(t)
	for _, q := range queries {
		checkQuery(t, q.where, q.expr, families)
	}
	t.Logf("%d queries checked against %d exported families", len(queries), len(families))
}

// TestAlertRulesMatchTheCollector checks the alerting rules' queries
// against a scrape the same way.
func TestAlertRulesMatchTheCollector(t *testing.T) {
	families := scrape(t)
	for _, rule := range alertRules(t) {
		checkQuery(t, "alert "+rule.name, rule.expr, families)
	}
}

type rule struct{ name, expr string }

// alertRules reads the alert names and expressions of the shipped rules
// (the file's own layout: "- alert: Name", then "expr: |" and an indented
// block).
func alertRules(t *testing.T) []rule {
	t.Helper()
	raw, err := os.ReadFile("alerts/purgatory.rules.yml")
	require.NoError(t, err)
	var rules []rule
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if name, ok := strings.CutPrefix(line, "- alert: "); ok {
			rules = append(rules, rule{name: name})
		}
		if line == "expr: |" {
			indent := len(lines[i+1]) - len(strings.TrimLeft(lines[i+1], " "))
			var expr []string
			for i++; i < len(lines) && len(lines[i]) > indent && strings.TrimSpace(lines[i][:indent]) == ""; i++ {
				expr = append(expr, strings.TrimSpace(lines[i]))
			}
			i--
			rules[len(rules)-1].expr = strings.Join(expr, " ")
		}
	}
	require.Len(t, rules, 4)
	for _, r := range rules {
		require.NotEmpty(t, r.expr, r.name)
	}
	return rules
}
