package observe_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// TestPrometheusScrapesTheDashboard builds and runs examples/dashboard,
// runs a real Prometheus server (Debian's prometheus) on a loopback port
// that scrapes its /metrics every second and evaluates the shipped alert
// rules, and then reads the circuits' states back through Prometheus'
// query API: each circuit is in exactly one state there, the state the
// example itself reports, and every dashboard query and alert rule
// evaluates without error.
//
// It takes about 6 s, most of it waiting: Prometheus 2.x applies its
// scrape targets on a fixed 5 s tick after start, so the first scrape
// comes no sooner. It runs in parallel with the package's other tests.
func TestPrometheusScrapesTheDashboard(t *testing.T) {
	promBin := need(t, "prometheus", "prometheus")
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a Prometheus server: not with -short")
	}
	dir := t.TempDir()
	start := time.Now()
	defer func() { t.Logf("done in %s", time.Since(start).Round(time.Millisecond)) }()

	// The example, built and run as a user would.
	exe := filepath.Join(dir, "dashboard")
	build := exec.Command("go", "build", "-o", exe, "github.com/purgatory-go/purgatory/examples/dashboard")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build examples/dashboard: %s", out)
	t.Logf("built examples/dashboard in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	example := exec.CommandContext(ctx, exe)
	stdout, err := example.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, example.Start())
	t.Cleanup(func() { cancel(); _ = example.Wait() })
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "examples/dashboard printed nothing")
	base := lines.Text()
	require.Regexp(t, `^http://127\.0\.0\.1:[0-9]+/$`, base)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	target := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")

	// Prometheus, scraping it.
	rules, err := filepath.Abs("alerts/purgatory.rules.yml")
	require.NoError(t, err)
	config := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: dashboard
    static_configs:
      - targets: [%q]
`, rules, target), 0o600))
	promAddr := freeAddr(t)
	prom := exec.CommandContext(ctx, promBin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr,
		"--log.level=warn")
	var promLog strings.Builder
	prom.Stdout, prom.Stderr = &promLog, &promLog
	require.NoError(t, prom.Start())
	t.Cleanup(func() {
		cancel()
		_ = prom.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	})
	api := "http://" + promAddr

	// Every circuit is in exactly one state in Prometheus, once scraped.
	var circuits []string
	eventually(t, 60*time.Second, func() error {
		res, err := query(api, `sum by (circuit) (purgatory_circuit_state{job="dashboard"})`)
		if err != nil {
			return err
		}
		if len(res) < 3 {
			return fmt.Errorf("%d circuits scraped so far", len(res))
		}
		circuits = circuits[:0]
		for _, r := range res {
			if r.value != "1" {
				return fmt.Errorf("circuit %s: states sum to %s", r.metric["circuit"], r.value)
			}
			circuits = append(circuits, r.metric["circuit"])
		}
		return nil
	})
	require.ElementsMatch(t, []string{"inventory", "recommendations", "shipping"}, circuits)
	t.Logf("first scrape queried at %s", time.Since(start).Round(time.Millisecond))

	// A circuit's state, read back through the query API, is the state the
	// example reports (its circuits change state every few seconds; the two
	// agree within a scrape or two).
	for _, circuit := range circuits {
		eventually(t, 30*time.Second, func() error {
			want, err := stateOf(base+"metrics", circuit)
			if err != nil {
				return err
			}
			res, err := query(api, fmt.Sprintf(`purgatory_circuit_state{job="dashboard",circuit=%q} == 1`, circuit))
			if err != nil {
				return err
			}
			if len(res) != 1 {
				return fmt.Errorf("circuit %s: %d states at 1", circuit, len(res))
			}
			if got := res[0].metric["state"]; got != want {
				return fmt.Errorf("circuit %s: Prometheus says %s, the example %s", circuit, got, want)
			}
			return nil
		})
	}

	// Every dashboard query evaluates, the variables set to "all".
	vars := strings.NewReplacer("$__rate_interval", "5s", "$job", ".*", "$instance", ".*", "$group", ".*", "$circuit", ".*")
	for _, q := range dashboardQueries(t) {
		expr := q.expr
		if m := labelValues.FindStringSubmatch(expr); m != nil {
			expr = m[1]
		}
		_, err := query(api, vars.Replace(expr))
		require.NoError(t, err, expr)
	}

	// The alert rules are loaded and evaluate without error.
	eventually(t, 30*time.Second, func() error {
		var body struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name           string    `json:"name"`
						Health         string    `json:"health"`
						LastError      string    `json:"lastError"`
						LastEvaluation time.Time `json:"lastEvaluation"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := getJSON(api+"/api/v1/rules", &body); err != nil {
			return err
		}
		n := 0
		for _, g := range body.Data.Groups {
			for _, r := range g.Rules {
				if r.Health != "ok" {
					return fmt.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
				}
				n++
			}
		}
		if n != 4 {
			return fmt.Errorf("%d rules evaluated", n)
		}
		return nil
	})
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// eventually calls f every 200 ms until it returns nil, and fails the test
// with f's last error after timeout.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

type sample struct {
	metric map[string]string
	value  string
}

// query runs an instant query through Prometheus' HTTP API.
func query(api, expr string) ([]sample, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(api+"/api/v1/query?query="+url.QueryEscape(expr), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, body.Error)
	}
	var out []sample
	for _, r := range body.Data.Result {
		v, _ := r.Value[1].(string)
		out = append(out, sample{metric: r.Metric, value: v})
	}
	return out, nil
}

// stateOf scrapes a /metrics page and returns the state of circuit.
func stateOf(metrics, circuit string) (string, error) {
	resp, err := http.Get(metrics)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return "", err
	}
	for _, m := range families["purgatory_circuit_state"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["circuit"] == circuit && m.GetGauge().GetValue() == 1 {
			return labels["state"], nil
		}
	}
	return "", fmt.Errorf("circuit %s not in %s", circuit, metrics)
}
