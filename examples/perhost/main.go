// Command perhost shows httpcircuit's per-host circuits: three local HTTP
// hosts behind one http.Client, one of which fails. Its circuit opens and
// its requests are rejected without being sent, while the other hosts'
// circuits stay closed; a 404 is an answer, not a failure. Once the host
// recovers, a trial request after the open period closes its circuit.
//
//	go run ./examples/perhost
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/purgatory-go/purgatory/httpcircuit"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

func main() {
	// The open period ends on a timer: wait a little past it.
	run(os.Stdout, nil, func(d time.Duration) { time.Sleep(d + 100*time.Millisecond) })
}

const ttl = 500 * time.Millisecond

// out serializes the lines of the requests and of the listener.
type out struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *out) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
}

// run plays the scenario. clock is nil for the real clock; sleep waits (or
// advances a fake clock).
func run(w io.Writer, clock purgatory.Clock, sleep func(time.Duration)) {
	o := &out{w: w}
	var searchDown atomic.Bool
	searchDown.Store(true)
	hosts := map[string]http.HandlerFunc{
		"catalog.local": func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "3 items") },
		"search.local": func(w http.ResponseWriter, _ *http.Request) {
			if searchDown.Load() {
				http.Error(w, "index rebuilding", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "2 hits")
		},
		"users.local": func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
	}
	// Each host is an httptest server on 127.0.0.1; the base transport
	// dials it for its name, so that circuits are named after the hosts.
	addrs := map[string]string{}
	for name, h := range hosts {
		srv := httptest.NewServer(h)
		defer srv.Close()
		addrs[name+":80"] = srv.Listener.Addr().String()
	}
	var dialer net.Dialer
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addrs[addr])
	}}
	defer base.CloseIdleConnections()

	opts := []purgatory.Option{purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind == purgatory.EventStateChanged {
			o.printf("  event  circuit %q: %s -> %s", e.Circuit, e.From, e.To)
		}
	}))}
	if clock != nil {
		opts = append(opts, purgatory.WithClock(clock))
	}
	factory := purgatory.NewFactory(opts...)
	transport := httpcircuit.New(base, factory, httpcircuit.WithConfig(purgatory.Config{Threshold: 3, TTL: ttl}))
	client := &http.Client{Transport: transport}

	round := func(i int) {
		for _, host := range []string{"catalog.local", "search.local", "users.local"} {
			resp, err := client.Get("http://" + host + "/")
			var line string
			switch {
			case errors.Is(err, purgatory.ErrOpen):
				line = "rejected at once, not sent"
			case err != nil:
				line = err.Error()
			default:
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				line = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			o.printf("round %d  %-14s %-42s [%s]", i, host, line, transport.Breaker(host).State())
		}
	}
	o.printf("-- search.local fails: 3 failures open its circuit; the others stay closed")
	for i := 1; i <= 3; i++ {
		round(i)
	}
	o.printf("-- while open, search.local's requests are not sent")
	round(4)
	o.printf("-- search.local recovers; after the open period a trial closes its circuit")
	searchDown.Store(false)
	sleep(ttl)
	round(5)
	o.printf("circuits: %d (one per host)", transport.Group().Len())
}
