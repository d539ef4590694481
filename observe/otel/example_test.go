package otel_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	purgatoryotel "github.com/purgatory-go/purgatory/observe/otel"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// Register the instruments of a factory with your meter provider (here an
// SDK one with a manual reader; in production, one with your exporter).
func ExampleRegister() {
	factory := purgatory.NewFactory()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	reg, err := purgatoryotel.Register(factory, provider)
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()
	factory.Breaker("payments", purgatory.Config{})

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		fmt.Println(m.Name)
	}
	// Output:
	// purgatory.circuit.state
	// purgatory.calls
	// purgatory.transitions
	// purgatory.circuit.consecutive_failures
	// purgatory.store.errors
	// purgatory.circuits
}
