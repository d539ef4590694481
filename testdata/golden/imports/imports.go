// Package imports covers import clashes: two packages named v1 in one
// signature, aliased imports, a package whose name is not its directory's,
// a dot import, and package-scope names that clash with the imports the
// generated code needs.
package imports

import (
	ctxpkg "context"
	. "time"

	av1 "github.com/purgatory-go/purgatory/testdata/golden/imports/a/v1"
	bv1 "github.com/purgatory-go/purgatory/testdata/golden/imports/b/v1"
	"github.com/purgatory-go/purgatory/testdata/golden/imports/naming"
	"github.com/purgatory-go/purgatory/testdata/golden/imports/pub"
)

// purgatory is a package-scope name: the runtime import is renamed.
var purgatory = "purgatory"

// context is a package-scope name: the context import is renamed.
func context() string { return purgatory }

// API uses both v1 packages in one signature.
//
//purgatory:circuit name=api exclude=bv1.ErrGone
type API interface {
	Call(ctx ctxpkg.Context, req av1.Request) (bv1.Response, error)
	Thing(t realname.Thing, d Duration) (*realname.Thing, error)
	NoContext(d Duration) error
	Receive(ctx ctxpkg.Context, f func(ctxpkg.Context, *pub.Message)) (pub.Message, error)
}
