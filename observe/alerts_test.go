package observe_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/purgatory-go/purgatory/internal/testbin"
)

// need returns the path of a binary the test needs. Without it the test is
// skipped, or fails when CI=true (CI installs it: see .ci/run).
func need(t *testing.T, binary, pkg string) string { return testbin.Need(t, binary, pkg) }

// TestAlertRules checks the shipped alerting rules with promtool (syntax,
// PromQL, templates) and runs their unit tests.
func TestAlertRules(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "purgatory.rules.yml"},
		{"test", "rules", "purgatory.rules_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "alerts"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
}
