// Package excludes covers exclude entries beyond the file's own imports:
// error constants, an import path, and a package that another file of the
// package imports.
package excludes

import (
	"context"
)

// ErrBusy is a typed string constant whose type implements error.
const ErrBusy = constErr("busy")

type constErr string

func (e constErr) Error() string { return string(e) }

// Dialer excludes constants of two kinds, sql.ErrNoRows through its import
// path (this file does not import database/sql), and fs.ErrNotExist
// through the import of another file of the package (other.go).
//
//purgatory:circuit name=dial exclude=ErrBusy,syscall.ECONNREFUSED,database/sql.ErrNoRows,fs.ErrNotExist
type Dialer interface {
	Dial(ctx context.Context, addr string) error
}

// Spaced writes its lists with spaces after the commas, and its name quoted.
//
//purgatory:circuit name="dial spaced" exclude=ErrBusy, syscall.ECONNREFUSED skip=Close, Ping
type Spaced interface {
	Dial(ctx context.Context, addr string) error
	Ping(ctx context.Context) error
	Close() error
}
