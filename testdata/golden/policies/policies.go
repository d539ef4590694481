// Package policies covers the policy keys: a failure rate over a rolling
// window, slow calls, growing open periods, and their inheritance by
// method annotations.
package policies

import (
	"context"
	"time"
)

// Search opens on a failure rate (and, combined, on consecutive failures).
//
//purgatory:circuit name=search threshold=10 rate=50% window=1m min=40 slow=2s ttl=5s maxttl=5m
type Search interface {
	Query(ctx context.Context, q string) ([]string, error)

	// Suggest inherits every policy key and changes two.
	//
	//purgatory:circuit name=search-suggest rate=12.5% slow=150ms
	Suggest(ctx context.Context, prefix string) ([]string, error)

	// Index inherits the rate and sets a backoff cap of its own.
	//
	//purgatory:circuit name=search-index maxttl=1h30m
	Index(ctx context.Context, doc string, at time.Time) error
}

// Feed uses the rate alone, with the window's and min's defaults.
//
//purgatory:circuit name=feed rate=100%
type Feed interface {
	Next(ctx context.Context) (string, error)
}
