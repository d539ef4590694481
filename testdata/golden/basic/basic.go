// Package basic is the contract's example: an interface circuit, a
// per-method circuit, a skipped method and excludes of each kind.
package basic

import (
	"context"
	"database/sql"
	"errors"
)

//go:generate go run ../../../cmd/purgatorygen

// ChargeRequest asks for a charge.
type ChargeRequest struct {
	Amount int64
}

// Receipt proves a charge.
type Receipt struct {
	ID string
}

// ErrNotFound is returned for unknown ids.
var ErrNotFound = errors.New("not found")

// NotFoundError is an error type matched with errors.As through a pointer.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return "not found: " + e.ID }

// ValidationError is an error type with a value receiver.
type ValidationError struct{ Field string }

func (e ValidationError) Error() string { return "invalid " + e.Field }

// ErrBadRequest is matched by the IsClientError predicate.
var ErrBadRequest = errors.New("bad request")

// IsClientError reports whether err is the caller's fault.
func IsClientError(err error) bool { return errors.Is(err, ErrBadRequest) }

// PaymentClient talks to the payment provider.
//
//purgatory:circuit name=payments threshold=5 ttl=30s exclude=ErrNotFound,IsClientError,*NotFoundError,ValidationError,sql.ErrNoRows
type PaymentClient interface {
	Charge(ctx context.Context, req ChargeRequest) (*Receipt, error)

	//purgatory:circuit name=payments-refund threshold=2
	Refund(ctx context.Context, id string) error

	// Status has no context: the wrapper passes nil (none is known).
	Status(id string) (string, int, bool, error)

	//purgatory:skip
	Close() error

	// Lookup returns a database type: sql is imported for it and for the exclude.
	Lookup(ctx context.Context, id string) (sql.NullString, error)

	// Name has no error result and is forwarded.
	Name() string
}
