// Package realname lives in a directory called naming.
package realname

// Thing is a type of a package whose name differs from its path.
type Thing struct{}
