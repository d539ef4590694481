// Package v1 is one of two packages named v1.
package v1

// Request is a request of API a.
type Request struct{ ID string }
