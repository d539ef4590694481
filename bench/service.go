// Package bench compares the cost of purgatory's circuit breakers with other
// Go circuit-breaker libraries, each guarding the same trivial service.
//
// Every contender implements [Service] by wrapping a [Backend]; the
// benchmarks in bench_test.go call each one through the interface, so the
// direct call (no breaker) is the floor every contender is measured against.
package bench

//go:generate go tool purgatorygen

import (
	"context"
	"errors"
)

// Threshold is the number of consecutive failures that opens every
// contender's circuit.
const Threshold = 5

// ErrBackend is the error the backend returns for a negative key.
var ErrBackend = errors.New("bench: backend failure")

// Service is the guarded dependency: one method that returns a value and an
// error.
//
//purgatory:circuit name=bench threshold=5 ttl=30s
type Service interface {
	Get(ctx context.Context, key int) (int, error)
}

// Backend is the trivial Service every contender wraps: Get returns key and
// a nil error, or ErrBackend when key is negative. It keeps no state, so the
// benchmarks measure the breakers and nothing else.
type Backend struct{}

// Get returns key, or ErrBackend when key is negative.
//
//go:noinline
func (Backend) Get(_ context.Context, key int) (int, error) {
	if key < 0 {
		return 0, ErrBackend
	}
	return key, nil
}
