// Package shapes covers method shapes and parameter names that collide
// with the names the generated code uses.
package shapes

import (
	"context"
	"fmt"
	"time"
)

// Options configure a call.
type Options struct{ Verbose bool }

// ID is an alias: the generated code keeps its spelling.
type ID = string

// Point is a struct result: its zero value needs a variable.
type Point struct{ X, Y int }

// Level is a named integer: its zero value is 0.
type Level int

// Store has every method shape the generator handles.
//
//purgatory:circuit threshold=3 ttl=1500ms trials=2
type Store interface {
	// Get is context-first.
	Get(ctx context.Context, id ID) ([]byte, error)
	// Ping has no context and returns only an error.
	Ping() error
	// Stat has several results.
	Stat(ctx context.Context, id ID) (int, string, error)
	// Where has named results.
	Where(ctx context.Context) (p Point, level Level, err error)
	// Len has no error result.
	Len() int
	// Reset has no result at all.
	Reset()
	// Put has a variadic parameter.
	Put(ctx context.Context, id ID, opts ...func(*Options)) error
	// Unnamed has unnamed parameters.
	Unnamed(context.Context, string, []byte) error
	// Blank has blank parameters.
	Blank(_ context.Context, _ int, p0 string) error
	// Clash has parameters named like everything the wrapper uses.
	Clash(c, t, err, done, fb, inner, r0, ctx, factory string) (bool, error)
	// Imports has parameters named like the imports.
	Imports(errors, context, time, fmt, purgatory, runtime int) error
	// Types has parameters named like types the body names.
	Types(Point, Level, string, error) (Point, error)
	// Stamp uses the imports for real.
	Stamp(ctx context.Context, at time.Time, s fmt.Stringer) (time.Duration, error)
	// Each takes a func with a variadic parameter of its own.
	Each(fn func(...string), more ...[]string) error
	// Chan returns channels and funcs.
	Chan() (<-chan int, chan<- string, chan (<-chan int), func(int) (bool, error), error)
	// Anon uses unnamed struct and interface types.
	Anon(v struct {
		A int `json:"a"`
		B []any
	}, w interface{ Close() error }) (any, error)

	//purgatory:circuit name=store-slow ttl=2m
	Slow(ctx context.Context) error
}
