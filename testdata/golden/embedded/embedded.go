// Package embedded covers interfaces embedded from other packages, the
// pattern of wrapping a third-party interface by embedding it, defined
// types and aliases of interfaces (generic too), and the Close rule.
package embedded

import (
	"context"
	"io"
	"net"
	"net/http"
)

// Pinger is a local interface embedded below.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Blob embeds io.ReadCloser and a local interface.
//
//purgatory:circuit name=blob threshold=2
type Blob interface {
	io.ReadCloser
	Pinger
	Size() int64
}

// Transport wraps a third-party interface: embed it in a local annotated
// interface.
//
//purgatory:circuit name=http ttl=10s
type Transport interface {
	http.RoundTripper
}

// Reader is a defined type whose underlying type is a third-party
// interface.
//
//purgatory:circuit name=reader
type Reader io.Reader

// ReadCloser is an alias of a third-party interface: Read is guarded, the
// embedded Close is forwarded (a wrapper must never keep a client from
// closing).
//
//purgatory:circuit name=closer
type ReadCloser = io.ReadCloser

// Conn is a defined type of a third-party interface, where no method can be
// annotated: skip= names the methods to forward.
//
//purgatory:circuit name=conn skip=LocalAddr,RemoteAddr,SetDeadline,SetReadDeadline,SetWriteDeadline
type Conn net.Conn

// Store is a generic interface that Repo aliases.
type Store[T any] interface {
	Get(ctx context.Context, id string) (T, error)
	Put(ctx context.Context, id string, v T) error
}

// Repo is a generic alias: its wrapper keeps the type parameter.
//
//purgatory:circuit name=repo
type Repo[T any] = Store[T]

// Guarded embeds io.Closer and guards Close with a method annotation, which
// needs the method declared here.
//
//purgatory:circuit name=guarded
type Guarded interface {
	Pinger

	//purgatory:circuit
	Close() error
}
