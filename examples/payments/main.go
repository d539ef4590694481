// Command payments shows a generated circuit breaker at work: a flaky fake
// payment provider behind the annotated PaymentClient interface (see
// provider.go and the generated purgatory_gen.go). It prints the calls,
// the trip, the fast rejections, the half-open trial and the recovery.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

func main() {
	run(os.Stdout, nil, time.Sleep)
}

// syncWriter serializes the lines of the calls and of the listener (the
// breaker's timer reports the move to half-open from its own goroutine).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format+"\n", args...)
}

// run plays the scenario. clock is nil for the real clock; sleep waits (or
// advances a fake clock) for the given time.
func run(w io.Writer, clock purgatory.Clock, sleep func(time.Duration)) {
	out := &syncWriter{w: w}
	listener := purgatory.ListenerFunc(func(e purgatory.Event) {
		switch e.Kind {
		case purgatory.EventStateChanged:
			out.printf("  event    circuit %q: %s -> %s", e.Circuit, e.From, e.To)
		case purgatory.EventRecovered:
			out.printf("  event    circuit %q: recovered", e.Circuit)
		}
	})
	opts := []purgatory.Option{purgatory.WithListener(listener)}
	if clock != nil {
		opts = append(opts, purgatory.WithClock(clock))
	}
	factory := purgatory.NewFactory(opts...)

	provider := &flakyProvider{}
	client := NewPaymentClientCircuit(provider, factory)
	breaker, _ := factory.Lookup("payments")
	defer client.Close()

	ctx := context.Background()
	n := 0
	charge := func(card string) {
		n++
		before := provider.Calls()
		what := "call"
		if breaker.State() == purgatory.HalfOpen {
			what = "trial"
		}
		r, err := client.Charge(ctx, ChargeRequest{Card: card, Amount: 1999})
		reached := provider.Calls() > before
		var open *purgatory.OpenError
		switch {
		case err == nil:
			out.printf("%s %2d  charged card %s: receipt %s  [circuit %q %s]", what, n, card, r.ID, "payments", breaker.State())
		case errors.As(err, &open):
			out.printf("%s %2d  rejected at once, provider not called (retry after %v)  [circuit %q %s]",
				what, n, open.RetryAfter.Round(time.Millisecond), open.Circuit, breaker.State())
		case errors.Is(err, ErrDeclined):
			out.printf("%s %2d  card %s declined: excluded, not a failure  [circuit %q %s]", what, n, card, "payments", breaker.State())
		default:
			out.printf("%s %2d  failed: %v (provider reached: %t)  [circuit %q %s]", what, n, err, reached, "payments", breaker.State())
		}
	}

	out.printf("-- the provider works")
	charge("4242")
	charge("0000")
	charge("4242")

	out.printf("-- the provider goes down: 3 consecutive failures trip the circuit")
	provider.setDown(true)
	for range 3 {
		charge("4242")
	}

	out.printf("-- while open, calls are rejected at once")
	for range 3 {
		charge("4242")
	}

	out.printf("-- the provider comes back; after the ttl one trial call is let through")
	provider.setDown(false)
	sleep(600 * time.Millisecond)
	charge("4242")

	out.printf("-- closed again")
	charge("4242")
	out.printf("the provider saw %d of %d calls", provider.Calls(), n)
}
