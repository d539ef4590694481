// Package v1 is the other package named v1.
package v1

// Response is a response of API b.
type Response struct{ OK bool }

// ErrGone is an error variable of API b.
var ErrGone error = gone{}

type gone struct{}

func (gone) Error() string { return "gone" }
