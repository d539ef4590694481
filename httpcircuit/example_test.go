package httpcircuit_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/purgatory-go/purgatory/httpcircuit"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// One circuit per host: the failing host's circuit opens after three 503
// answers, and its requests fail at once without being sent; the other
// host, and the 404 answers, are not affected.
func ExampleNew() {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()

	factory := purgatory.NewFactory()
	client := &http.Client{Transport: httpcircuit.New(nil, factory,
		httpcircuit.WithConfig(purgatory.Config{Threshold: 3, TTL: time.Minute}))}

	for i := range 5 {
		for _, host := range []struct{ name, url string }{{"down", down.URL}, {"up", up.URL + "/missing"}} {
			resp, err := client.Get(host.url)
			switch {
			case errors.Is(err, purgatory.ErrOpen):
				fmt.Printf("%d %s: rejected, not sent\n", i, host.name)
			case err != nil:
				fmt.Println(err)
			default:
				resp.Body.Close()
				fmt.Printf("%d %s: %s\n", i, host.name, resp.Status)
			}
		}
	}
	// Output:
	// 0 down: 503 Service Unavailable
	// 0 up: 404 Not Found
	// 1 down: 503 Service Unavailable
	// 1 up: 404 Not Found
	// 2 down: 503 Service Unavailable
	// 2 up: 404 Not Found
	// 3 down: rejected, not sent
	// 3 up: 404 Not Found
	// 4 down: rejected, not sent
	// 4 up: 404 Not Found
}

// Classify is what the transport counts: transport errors, 5xx and 429
// fail; every other answer succeeds. A generated wrapper uses it with
// result=httpcircuit.Classify.
func ExampleClassify() {
	for _, code := range []int{200, 404, 429, 500, 503} {
		fmt.Println(code, httpcircuit.Classify(&http.Response{StatusCode: code}, nil))
	}
	// Output:
	// 200 <nil>
	// 404 <nil>
	// 429 httpcircuit: status 429 Too Many Requests
	// 500 httpcircuit: status 500 Internal Server Error
	// 503 httpcircuit: status 503 Service Unavailable
}

// A key function gives circuits to something else than hosts: here, one
// per tenant of a multi-tenant API, named "tenants/<tenant>".
func ExampleWithKey() {
	tr := httpcircuit.New(nil, purgatory.NewFactory(),
		httpcircuit.WithPrefix("tenants"),
		httpcircuit.WithKey(func(r *http.Request) string { return r.Header.Get("X-Tenant") }),
		httpcircuit.WithGroupOptions(purgatory.WithMaxKeys(10_000), purgatory.WithIdleTimeout(time.Hour)))
	fmt.Println(tr.Breaker("acme").Name())
	// Output: tenants/acme
}
