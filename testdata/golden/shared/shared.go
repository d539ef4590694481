// Package shared covers several annotated interfaces in one package, two
// of them sharing one circuit (and so one breaker).
package shared

import (
	"context"
	"errors"
)

// ErrMissing is excluded by both interfaces.
var ErrMissing = errors.New("missing")

// Users reads users.
//
//purgatory:circuit name=db threshold=4 exclude=ErrMissing
type Users interface {
	User(ctx context.Context, id int) (string, error)
}

// Orders reads orders through the same circuit.
//
//purgatory:circuit name=db threshold=4 exclude=ErrMissing
type Orders interface {
	Order(ctx context.Context, id int) (string, error)
}

// Mail has its own default-named circuit.
//
//purgatory:circuit
type Mail interface {
	Send(ctx context.Context, to, body string) error
}

// Unannotated is not wrapped.
type Unannotated interface {
	Do() error
}
