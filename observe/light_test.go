package observe_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRuntimeStaysLight checks that a program importing only the runtime
// compiles neither Prometheus nor OpenTelemetry nor chromedp, and that the
// status page needs neither metrics library.
func TestRuntimeStaysLight(t *testing.T) {
	for _, pkg := range []string{
		"github.com/purgatory-go/purgatory/runtime",
		"github.com/purgatory-go/purgatory/observe/status",
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, heavy := range []string{"github.com/prometheus/", "go.opentelemetry.io/", "github.com/chromedp/"} {
				if strings.HasPrefix(dep, heavy) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
