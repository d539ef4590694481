package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

var errUnavailable = errors.New("payment provider unavailable")

// A factory hands out named breakers; the first registration of a name
// configures it.
func ExampleFactory() {
	factory := purgatory.NewFactory(purgatory.WithThreshold(3), purgatory.WithTTL(10*time.Second))
	b := factory.Breaker("payments", purgatory.Config{Threshold: 2})
	fmt.Println(b.Name(), b.Config().Threshold, b.Config().TTL, b.State())
	// Output: payments 2 10s closed
}

// Do guards a call in code that is not generated.
func ExampleBreaker_Do() {
	clock := clocktest.New(time.Unix(0, 0))
	factory := purgatory.NewFactory(purgatory.WithClock(clock))
	b := factory.Breaker("payments", purgatory.Config{Threshold: 2, TTL: 30 * time.Second})

	charge := func(ctx context.Context) error { return errUnavailable }
	for range 3 {
		err := b.Do(context.Background(), charge)
		fmt.Println(err)
	}
	var open *purgatory.OpenError
	if err := b.Do(context.Background(), charge); errors.As(err, &open) {
		fmt.Println("retry after", open.RetryAfter)
	}
	clock.Advance(30 * time.Second)
	fmt.Println(b.State())
	// Output:
	// payment provider unavailable
	// payment provider unavailable
	// purgatory: circuit "payments" is open: retry after 30s
	// retry after 30s
	// half-open
}

// Listeners receive typed events; they can be added and removed at any
// time.
func ExampleFactory_AddListener() {
	factory := purgatory.NewFactory()
	remove := factory.AddListener(purgatory.ListenerFunc(func(e purgatory.Event) {
		if e.Kind == purgatory.EventStateChanged {
			fmt.Printf("%s: %s -> %s\n", e.Circuit, e.From, e.To)
		}
	}))
	defer remove()
	b := factory.Breaker("search", purgatory.Config{Threshold: 1})
	_ = b.Do(context.Background(), func(context.Context) error { return errUnavailable })
	b.Close()
	// Output:
	// search: closed -> open
	// search: open -> closed
}

// The slog listener logs state changes at Warn and everything else at
// Debug.
func ExampleNewSlogListener() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	factory := purgatory.NewFactory(purgatory.WithListener(purgatory.NewSlogListener(logger)))
	b := factory.Breaker("search", purgatory.Config{Threshold: 1})
	_ = b.Do(context.Background(), func(context.Context) error { return errUnavailable })
	// Output:
	// level=WARN msg="purgatory: state-changed" circuit=search event=state-changed seq=2 from=closed to=open
}
