// Package edge covers corner cases: an unexported interface, an empty one,
// one whose methods are all forwarded, methods named like the wrapper's
// fields, circuit names that are not identifiers, and results whose zero
// value needs a variable.
package edge

import "context"

// store is unexported: so are its wrapper and constructor.
//
//purgatory:circuit name=default
type store interface {
	inner() error
	fallback(ctx context.Context) ([4]byte, error)

	//purgatory:circuit name=2fa
	Default() (func(), error)

	//purgatory:circuit name=store/get.v2
	storeGetV2() (Handler, error)
}

// Handler is a named func type: its zero value is nil.
type Handler func(ctx context.Context) error

// Nothing has no methods.
//
//purgatory:circuit
type Nothing interface{}

// Forwarded has no guarded method: the constructor needs no factory.
//
//purgatory:circuit
type Forwarded interface {
	Name() string

	//purgatory:skip
	Close() error
}

var (
	_ = newStoreCircuit
	_ store
)
