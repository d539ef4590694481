package prometheus_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	purgatoryprom "github.com/purgatory-go/purgatory/observe/prometheus"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// Register a collector of the factory the generated wrappers use, and serve
// it with promhttp.
func ExampleNewCollector() {
	factory := purgatory.NewFactory()
	reg := prometheus.NewRegistry()
	collector := purgatoryprom.NewCollector(factory)
	reg.MustRegister(collector)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	factory.Breaker("payments", purgatory.Config{}).Open()
	out, _ := testutil.CollectAndFormat(collector, expfmt.TypeTextPlain, "purgatory_circuit_state")
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "purgatory_") {
			fmt.Println(line)
		}
	}
	// Output:
	// purgatory_circuit_state{circuit="payments",state="closed"} 0
	// purgatory_circuit_state{circuit="payments",state="half_open"} 0
	// purgatory_circuit_state{circuit="payments",state="isolated"} 0
	// purgatory_circuit_state{circuit="payments",state="open"} 1
}
