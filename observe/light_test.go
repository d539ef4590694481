package observe_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRuntimeStaysLight checks that a program importing only the runtime
// compiles neither Prometheus nor OpenTelemetry nor chromedp nor the
// integrations (httpcircuit, grpccircuit, gRPC), that the status page needs
// neither metrics library, and that httpcircuit needs no gRPC.
func TestRuntimeStaysLight(t *testing.T) {
	for _, pkg := range []string{
		"github.com/purgatory-go/purgatory/runtime",
		"github.com/purgatory-go/purgatory/observe/status",
		"github.com/purgatory-go/purgatory/httpcircuit",
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, heavy := range []string{"github.com/prometheus/", "go.opentelemetry.io/", "github.com/chromedp/",
				"google.golang.org/grpc", "github.com/purgatory-go/purgatory/httpcircuit", "github.com/purgatory-go/purgatory/grpccircuit"} {
				if heavy == pkg {
					continue
				}
				if strings.HasPrefix(dep, heavy) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
