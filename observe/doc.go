// Package observe is the home of the ways to look at purgatory circuits:
//
//   - [github.com/purgatory-go/purgatory/observe/prometheus]: a Prometheus
//     collector over a factory;
//   - [github.com/purgatory-go/purgatory/observe/otel]: OpenTelemetry metric
//     instruments over a factory;
//   - [github.com/purgatory-go/purgatory/observe/status]: a live status page
//     (HTML and JSON) with optional manual controls.
//
// Each lives in its own package so that a program that imports only the
// runtime never compiles Prometheus or OpenTelemetry.
package observe
