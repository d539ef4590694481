// Package stdlib wraps interfaces of the standard library by embedding
// them, to exercise many real signatures.
package stdlib

import (
	"context"
	"database/sql/driver"
	"io"
	"io/fs"
	"net"
	"net/http"
)

// Conn is a net.Conn: time.Time parameters, net.Addr results.
//
//purgatory:circuit name=conn threshold=10
type Conn interface {
	net.Conn
}

// FS is a file system with the optional interfaces.
//
//purgatory:circuit name=fs
type FS interface {
	fs.ReadDirFS
	fs.StatFS
	fs.ReadFileFS
}

// Driver is a database/sql/driver connection with context methods.
//
//purgatory:circuit name=db
type Driver interface {
	driver.Conn
	driver.ConnBeginTx
	driver.QueryerContext
	driver.ExecerContext
}

// Stream mixes io interfaces.
//
//purgatory:circuit name=stream
type Stream interface {
	io.ReadWriteSeeker
	io.ReaderFrom
	io.WriterTo
	io.ReaderAt
}

// Ctx embeds context.Context: only Err has an error result.
//
//purgatory:circuit name=ctx
type Ctx interface {
	context.Context
}

// Client is an HTTP client surface.
//
//purgatory:circuit name=http
type Client interface {
	Do(req *http.Request) (*http.Response, error)
	http.Handler
}
