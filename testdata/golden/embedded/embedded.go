// Package embedded covers interfaces embedded from other packages and the
// pattern of wrapping a third-party interface by embedding it.
package embedded

import (
	"context"
	"io"
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

// Closer is an alias of a third-party interface.
//
//purgatory:circuit name=closer
type Closer = io.Closer
