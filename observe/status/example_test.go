package status_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/purgatory-go/purgatory/observe/status"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// Serve the status page under /status/, with controls for requests from
// this machine only. The peer's address is not enough: a page on another
// site whose name was rebound to 127.0.0.1 (DNS rebinding) reaches the port
// from the operator's browser, but names its own site in the Host header.
func ExampleNew() {
	const served = "127.0.0.1:8080" // the address the server listens on
	factory := purgatory.NewFactory()
	factory.Breaker("payments", purgatory.Config{})

	page := status.New(factory, status.Options{
		Authorize: func(r *http.Request) bool {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			return err == nil && net.ParseIP(host).IsLoopback() && r.Host == served
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/status/", http.StripPrefix("/status", page))

	// An operator opens the circuit (curl -X POST .../status/circuits/payments/open).
	r := httptest.NewRequest(http.MethodPost, "/status/circuits/payments/open", nil)
	r.RemoteAddr, r.Host = "127.0.0.1:50000", served
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	b, _ := factory.Lookup("payments")
	fmt.Println(w.Code, b.State())
	// Output: 303 open
}
