// Package ctxsrc covers where a guarded call takes its context from: a
// context.Context parameter wherever it is, the Context() of a parameter
// (*http.Request, a value or an interface with that method), or none.
package ctxsrc

import (
	"context"
	"net/http"
)

// Envelope has a Context method on its value.
type Envelope struct{ Ctx context.Context }

// Context returns the envelope's context.
func (e Envelope) Context() context.Context { return e.Ctx }

// Contexter is an interface with a Context method.
type Contexter interface {
	Context() context.Context
}

// Transport is an http.RoundTripper written out: the request's context.
//
//purgatory:circuit name=transport
type Transport interface {
	RoundTrip(req *http.Request) (*http.Response, error)

	// Send takes the context from its second parameter.
	Send(name string, ctx context.Context) error

	// Post has both: the context.Context parameter wins.
	Post(req *http.Request, ctx context.Context) error

	// Deliver takes the context from a value with a Context method.
	Deliver(e Envelope) error

	// Handle takes it from an interface, which may be nil.
	Handle(c Contexter, ctx int) error

	// Flush knows no context: nil tells the breaker so.
	Flush() error

	// Close is forwarded, not guarded.
	Close() error
}
