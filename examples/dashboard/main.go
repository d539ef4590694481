// Command dashboard shows the ways to watch purgatory circuits: three
// generated wrappers over fake backends that go down and come back every
// few seconds, so their circuits trip and recover on their own, with the
// status page and Prometheus metrics served on a loopback port.
//
//	go run ./examples/dashboard [-addr 127.0.0.1:8080]
//
// Its first line of output is the page's URL (http://127.0.0.1:PORT/);
// the JSON is at /circuits and the metrics at /metrics. Requests from this
// machine may open, close and isolate circuits from the page.
//
// A loopback peer is not enough to trust a request: a page on any site whose
// name an attacker rebinds to 127.0.0.1 (DNS rebinding) reaches the port from
// the operator's own browser, and the browser takes it for same-origin. Such
// a request names the attacker's site in its Host header, so the dashboard
// answers only requests whose Host is the address it serves (or localhost
// with its port), and whose Origin, when the browser sends one, is too. Copy
// that check with the authorizer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	purgatoryprom "github.com/purgatory-go/purgatory/observe/prometheus"
	"github.com/purgatory-go/purgatory/observe/status"
	purgatory "github.com/purgatory-go/purgatory/runtime"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to serve on (port 0: any free port)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *addr); err != nil {
		log.Fatal(err)
	}
}

// loopback lets requests from this machine use the controls. It trusts
// the peer address only: serve it behind hostGuard, which refuses what a
// DNS-rebound page sends.
func loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return err == nil && net.ParseIP(host).IsLoopback()
}

// hostGuard answers only requests whose Host header is one of hosts, and
// whose Origin header, if any, is http:// one of them; others get 403.
// Reads are guarded too: a rebound page must not read the circuits either.
type hostGuard struct {
	hosts map[string]bool // host:port, lower case
	next  http.Handler
}

func (g hostGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hosts[strings.ToLower(r.Host)] {
		http.Error(w, "forbidden: this server answers to "+g.names()+" only", http.StatusForbidden)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != "http" || !g.hosts[strings.ToLower(u.Host)] {
			http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

func (g hostGuard) names() string {
	var names []string
	for h := range g.hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// servedHosts returns the Host values that name addr: itself, and for a
// loopback or unspecified address localhost and the loopback addresses,
// with addr's port.
func servedHosts(addr *net.TCPAddr) map[string]bool {
	port := strconv.Itoa(addr.Port)
	hosts := map[string]bool{strings.ToLower(addr.String()): true}
	if addr.IP.IsLoopback() || addr.IP.IsUnspecified() {
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			hosts[net.JoinHostPort(h, port)] = true
		}
	}
	return hosts
}

// run serves the dashboard on addr until ctx is done. Its first line on out
// is the page's URL.
func run(ctx context.Context, out io.Writer, addr string) error {
	factory := purgatory.NewFactory()
	defer factory.Close()

	reg := prometheus.NewRegistry()
	collector := purgatoryprom.NewCollector(factory)
	defer collector.Close()
	reg.MustRegister(collector)

	start := time.Now()
	inventory := NewInventoryCircuit(&fakeInventory{outage{start: start, period: 12 * time.Second, downAt: 6 * time.Second, upAt: 10 * time.Second}}, factory)
	shipping := NewShippingCircuit(&fakeShipping{outage{start: start, period: 20 * time.Second, downAt: 3 * time.Second, upAt: 8 * time.Second}}, factory)
	recommendations := NewRecommendationsCircuit(&fakeRecommendations{outage{start: start, period: 9 * time.Second, downAt: 4 * time.Second, upAt: 7 * time.Second, failEvery: 11}}, factory)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", status.New(factory, status.Options{Title: "purgatory dashboard", Authorize: loopback}))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	handler := hostGuard{hosts: servedHosts(ln.Addr().(*net.TCPAddr)), next: mux}
	base := "http://" + ln.Addr().String() + "/"
	fmt.Fprintln(out, base)
	fmt.Fprintln(out, "json:    "+base+"circuits")
	fmt.Fprintln(out, "metrics: "+base+"metrics")

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// The shop's traffic: a few calls a second through each wrapper.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		case err := <-served:
			return err
		case <-tick.C:
			_ = inventory.Reserve(ctx, fmt.Sprintf("sku-%d", n%50))
			_, _ = shipping.Quote(ctx, "Lisbon")
			_, _ = recommendations.For(ctx, "ana")
		}
	}
}
