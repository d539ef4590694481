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
// this machine only.
func ExampleNew() {
	factory := purgatory.NewFactory()
	factory.Breaker("payments", purgatory.Config{})

	page := status.New(factory, status.Options{
		Authorize: func(r *http.Request) bool {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			return err == nil && net.ParseIP(host).IsLoopback()
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/status/", http.StripPrefix("/status", page))

	// An operator opens the circuit (curl -X POST .../status/circuits/payments/open).
	r := httptest.NewRequest(http.MethodPost, "/status/circuits/payments/open", nil)
	r.RemoteAddr = "127.0.0.1:50000"
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	b, _ := factory.Lookup("payments")
	fmt.Println(w.Code, b.State())
	// Output: 303 open
}
