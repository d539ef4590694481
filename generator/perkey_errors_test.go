package generator_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/generator"
)

// TestErrorsPerCallKeys has a bad value for key=, maxkeys=, result= and
// ignore=, one per line (or entry), each reported at its position.
func TestErrorsPerCallKeys(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": `package bad

import (
	"context"
	"errors"
	"net/http"
)

var ErrX = errors.New("x")

const C = 1

type T struct {
	n    int
	p    *T
	Name string
}

func (t *T) Get(i int) string     { return "" }
func (t T) Pair() (string, error) { return "", nil }
func (t *T) Ptr() string          { return "" }
func (t T) Val() T                { return t }

type MyErr struct{}

func (*MyErr) Error() string { return "" }

func Wrong(resp *http.Response) error                   { return nil }
func Concrete(resp *http.Response, err error) *MyErr    { return nil }
func Generic[X any](x X, err error) error               { return err }
func Variadic(rs ...any) error                          { return nil }
func Classify(resp *http.Response, err error) error     { return err }

//purgatory:circuit name=a
type A interface {
	//purgatory:circuit key=
	K1(t T) error
	//purgatory:circuit key=t,u
	K2(t T) error
	//purgatory:circuit key=t..Name
	K3(t T) error
	//purgatory:circuit key=f().Name
	K4(t T) error
	//purgatory:circuit key=tt.Name
	K5(t T) error
	//purgatory:circuit key=t.Nme
	K6(t T) error
	//purgatory:circuit key=t.n()
	K7(t T) error
	//purgatory:circuit key=t.Get
	K8(t T) error
	//purgatory:circuit key=t.Pair()
	K9(t T) error
	//purgatory:circuit key=t.Val.Ptr
	K10(t T) error
	//purgatory:circuit key=t.p
	K11(t T) error
	//purgatory:circuit key=n
	K12(n int) error
}

//purgatory:circuit name=b
type B interface {
	//purgatory:circuit result=
	R1() (*http.Response, error)
	//purgatory:circuit result=Classify,Wrong
	R2() (*http.Response, error)
	//purgatory:circuit result=Clasify
	R3() (*http.Response, error)
	//purgatory:circuit result=C
	R4() (*http.Response, error)
	//purgatory:circuit result=ErrX
	R5() (*http.Response, error)
	//purgatory:circuit result=Wrong
	R6() (*http.Response, error)
	//purgatory:circuit result=Concrete
	R7() (*http.Response, error)
	//purgatory:circuit result=Generic
	R8() (*http.Response, error)
	//purgatory:circuit result=Variadic
	R9() (*http.Response, error)
	//purgatory:circuit result=http
	R10() (*http.Response, error)
	//purgatory:circuit result=MyErr
	R11() (*http.Response, error)
}

//purgatory:circuit name=c maxkeys=0 ignore=Nope,C,,*MyErr
type C1 interface{ Do() error }

//purgatory:circuit name=d maxkeys=5
type D interface{ Do() error }

//purgatory:circuit name=e key=req.URL.Host result=Classify
type E interface {
	Do(req *http.Request) (*http.Response, error)
	Ping(ctx context.Context) error
}

//purgatory:circuit name=f key=tenant
type F1 interface{ Do(tenant string) error }

//purgatory:circuit name=f
type F2 interface{ Do(tenant string) error }

type X1 struct{ Name string }
type X2 struct{ Name string }
type Amb struct {
	X1
	X2
}

type GenErr[X any] struct{}

func (GenErr[X]) Error() string { return "" }

//purgatory:circuit name=g
type G interface {
	//purgatory:circuit key=a.Name
	Do(a Amb) error
}

//purgatory:circuit name=h ignore=GenErr,*ErrX
type H interface{ Do() error }
`})
	want := []string{
		"bad.go:36:26: bad value for key: empty; key= takes a parameter or a chain of fields and niladic methods on one, such as key=tenant or key=req.URL.Host",
		"bad.go:38:27: bad value for key: \"t,u\" is a list; key= takes a parameter or a chain of fields and niladic methods on one, such as key=tenant or key=req.URL.Host",
		"bad.go:40:28: bad value for key: \"\" is not a name; key= takes a parameter or a chain of fields and niladic methods on one, such as key=tenant or key=req.URL.Host",
		"bad.go:42:26: bad value for key: \"f()\" is a call; the key starts with a parameter: key= takes a parameter or a chain of fields and niladic methods on one, such as key=tenant or key=req.URL.Host",
		"bad.go:44:26: key tt.Name: method K5 has no parameter tt (did you mean t?)",
		"bad.go:46:28: key t.Nme: t (of type T) has no field or method Nme (did you mean Name?)",
		"bad.go:48:28: key t.n(): n is a field, not a method: write it without ()",
		"bad.go:50:28: key t.Get: method Get has type func(i int) string; key= calls only methods with no arguments and one result",
		"bad.go:52:28: key t.Pair(): method Pair has type func() (string, error); key= calls only methods with no arguments and one result",
		"bad.go:54:32: key t.Val.Ptr: method Ptr has a pointer receiver, and t.Val() is not addressable (a method's result)",
		"bad.go:56:28: key t.p: t.p is of type *T; a key is a string, a named string type or a fmt.Stringer: key on a field or method that gives one",
		"bad.go:58:26: key n: n is of type int; a key is a string, a named string type or a fmt.Stringer: key on a field or method that gives one",
		"bad.go:64:29: bad value for result: empty; result= names a function from the method's results to the error its circuit counts, such as result=httpcircuit.Classify",
		"bad.go:66:37: bad value for result: \"Classify,Wrong\" is a list; result= names a function from the method's results to the error its circuit counts, such as result=httpcircuit.Classify",
		"bad.go:68:29: result Clasify: undefined: Clasify (did you mean Classify?)",
		"bad.go:70:29: result C: C is a constant, not a function; result= names a function from the method's results to the error its circuit counts, such as result=httpcircuit.Classify",
		"bad.go:72:29: result ErrX: variable of type error is not a function; result= names a function from the method's results to the error its circuit counts, such as result=httpcircuit.Classify",
		"bad.go:74:29: result Wrong: Wrong takes (*http.Response), which does not fit the results (*http.Response, error) of method R6; result= takes a function of the method's results, such as func(*http.Response, error) error",
		"bad.go:76:29: result Concrete: Concrete has type func(resp *http.Response, err error) *MyErr; it must return exactly one error (a nil *MyErr would reach the breaker as a non-nil error): declare its result as error",
		"bad.go:78:29: result Generic: generic function Generic needs type arguments; declare a function of the method's result types that calls it",
		"bad.go:80:29: result Variadic: Variadic is variadic; declare a function that takes exactly the method's results",
		"bad.go:82:29: result http: http is a package, not a function; result= names a function from the method's results to the error its circuit counts, such as result=httpcircuit.Classify",
		"bad.go:84:29: result MyErr: MyErr is a type, not a function; result= names a function from the method's results to the error its circuit counts, such as result=httpcircuit.Classify",
		"bad.go:88:36: bad value for maxkeys: \"0\" is not an integer >= 1",
		"bad.go:88:45: ignore Nope: undefined: Nope; ignore names error variables, error types and func(error) bool predicates declared in this package or in a package this file imports",
		"bad.go:88:50: ignore C: C is a constant of type untyped int, which does not implement error; ignore takes an error variable, an error type or a func(error) bool",
		"bad.go:88:52: bad value for ignore: empty entry",
		"bad.go:91:28: maxkeys= bounds the circuits of key=, which is not set; add key= (such as key=req.URL.Host) or remove maxkeys=",
		"bad.go:94:32: key req.URL.Host: method Ping has no parameter req; key= of the interface applies to every guarded method: give Ping a //purgatory:circuit with a key= over its own parameters, write key= on the methods it fits instead, or mark Ping //purgatory:skip",
		"bad.go:103:13: circuit \"f\" is declared here with the factory's defaults but at bad.go:100:13 with key=tenant",
		"bad.go:119:28: key a.Name: Name is ambiguous in a (of type Amb)",
		"bad.go:123:35: ignore GenErr: generic type GenErr needs type arguments; use a func(error) bool instead",
		"bad.go:123:42: ignore *ErrX: ErrX is a variable, not a type",
	}
	assert.Equal(t, strings.Join(want, "\n"), generateErr(t, dir))
}

// writeFiles adds files (paths with slashes) to the module in dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	}
}

// issue20Deps is a package errs that lib's API mentions (errs.Other), so
// that a package importing only lib sees a partial errs through lib's
// export data.
var issue20Deps = map[string]string{
	"errs/errs.go": "package errs\n\nimport \"errors\"\n\n// Other is what lib mentions.\ntype Other struct{}\n\n// ErrGone is not mentioned by lib.\nvar ErrGone = errors.New(\"gone\")\n\n// IsGone is not mentioned by lib.\nfunc IsGone(err error) bool { return errors.Is(err, ErrGone) }\n",
	"lib/lib.go":   "package lib\n\nimport (\n\t\"context\"\n\n\t\"example.com/bad/errs\"\n)\n\n// Client mentions errs.Other.\ntype Client interface {\n\tGet(ctx context.Context) (errs.Other, error)\n}\n",
}

// TestExcludeThroughDependency: an import path entry names a package that
// the annotated package reaches only through a dependency whose API
// mentions another name of it (issue 20: "undefined" for names that exist).
func TestExcludeThroughDependency(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": `package bad

import "example.com/bad/lib"

//purgatory:circuit exclude=example.com/bad/errs.IsGone,example.com/bad/errs.ErrGone ignore=net/http.ErrServerClosed
type C interface {
	lib.Client
}
`})
	writeFiles(t, dir, issue20Deps)
	files, err := generator.Generate(generator.Config{Dir: dir})
	require.NoError(t, err)
	require.Len(t, files, 1)
	src := string(files[0].Content)
	assert.Contains(t, src, "Exclude: []func(error) bool{errs.IsGone, purgatory.Is(errs.ErrGone)},")
	assert.Contains(t, src, "Ignore:  []func(error) bool{purgatory.Is(http.ErrServerClosed)},")
}

// TestErrorsImportOnlyForAnnotation: a package imported only for an
// annotation entry is unused for the compiler; the error says that the
// import-path form needs no import.
func TestErrorsImportOnlyForAnnotation(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": `package bad

import (
	"example.com/bad/errs"
	"example.com/bad/lib"
)

//purgatory:circuit exclude=errs.IsGone
type C interface {
	lib.Client
}
`})
	writeFiles(t, dir, issue20Deps)
	assert.Equal(t, `bad.go:4:2: "example.com/bad/errs" imported and not used; if the file imports it only for an annotation, remove the import and name the package by its path: exclude=example.com/bad/errs.IsGone`,
		generateErr(t, dir))
}

// TestIntegrationsByName: result=httpcircuit.Classify and
// ignore=grpccircuit.IsClientError name this module's integration
// packages without an import. The module here is a stand-in with the same
// path, so that the test does not depend on those packages' code.
func TestIntegrationsByName(t *testing.T) {
	fake := t.TempDir()
	writeFiles(t, fake, map[string]string{
		"go.mod":                     "module github.com/purgatory-go/purgatory\n\ngo 1.24\n",
		"httpcircuit/httpcircuit.go": "package httpcircuit\n\nimport \"net/http\"\n\n// Classify is a stand-in.\nfunc Classify(resp *http.Response, err error) error { return err }\n",
		"grpccircuit/grpccircuit.go": "package grpccircuit\n\n// IsClientError is a stand-in.\nfunc IsClientError(err error) bool { return false }\n",
	})
	dir := badModule(t, map[string]string{
		"go.mod": "module example.com/bad\n\ngo 1.24\n\nrequire github.com/purgatory-go/purgatory v0.0.0\n\nreplace github.com/purgatory-go/purgatory => " + fake + "\n",
		"bad.go": `package bad

import "net/http"

//purgatory:circuit key=req.URL.Host result=httpcircuit.Classify ignore=grpccircuit.IsClientError
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}
`})
	files, err := generator.Generate(generator.Config{Dir: dir})
	require.NoError(t, err)
	require.Len(t, files, 1)
	src := string(files[0].Content)
	assert.Contains(t, src, "\t\"github.com/purgatory-go/purgatory/grpccircuit\"\n\t\"github.com/purgatory-go/purgatory/httpcircuit\"\n")
	assert.Contains(t, src, "cerr := httpcircuit.Classify(r0, r1)")
	assert.Contains(t, src, "Ignore: []func(error) bool{grpccircuit.IsClientError}")
}

// TestErrorsIntegrationMissing: an integration package the module cannot
// load is reported as such.
func TestErrorsIntegrationMissing(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": `package bad

import "net/http"

//purgatory:circuit result=httpcircuit.Classify
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}
`})
	assert.Equal(t, "bad.go:5:28: result httpcircuit.Classify: cannot load package github.com/purgatory-go/purgatory/httpcircuit: no required module provides package github.com/purgatory-go/purgatory/httpcircuit; to add it:\n\tgo get github.com/purgatory-go/purgatory/httpcircuit",
		generateErr(t, dir))
}

// TestErrorsPerCallKeysInherited: key= and result= of the interface are
// checked against every guarded method, a type parameter has no fields to
// key on, and a promotion through another package's unexported embedded
// pointer cannot be nil-checked.
func TestErrorsPerCallKeysInherited(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": `package bad

import (
	"context"
	"net/http"

	"example.com/bad/dep"
)

func Classify(resp *http.Response, err error) error { return err }

//purgatory:circuit result=Classify
type A interface {
	Get(ctx context.Context) (*http.Response, error)
	Ping(ctx context.Context) error
	//purgatory:skip
	Skipped(ctx context.Context) error
}

//purgatory:circuit key=v.Name
type G[T any] interface {
	Do(v T) error
}

//purgatory:circuit key=o.Name
type P interface {
	Do(o dep.Outer) error
}
`})
	writeFiles(t, dir, map[string]string{"dep/dep.go": "package dep\n\n// Outer embeds an unexported pointer.\ntype Outer struct{ *inner }\n\ntype inner struct{ Name string }\n"})
	assert.Equal(t, "bad.go:12:28: result Classify: Classify takes (*http.Response, error), which does not fit the results (error) of method Ping; result= takes a function of the method's results, such as func(error) error; result= of the interface applies to every guarded method: write it on the methods it fits instead, or mark Ping //purgatory:skip\n"+
		"bad.go:20:27: key v.Name: v is of type parameter type T, whose fields and methods key= cannot reach; key on a string parameter\n"+
		"bad.go:25:27: key o.Name: Name is promoted through the unexported embedded field inner of example.com/bad/dep, which may be nil and which generated code cannot check; key on an exported field or method",
		generateErr(t, dir))
}

// TestWarningConstrainedFile: an interface declared under a build
// constraint that a build without tags satisfies (//go:build !custom)
// goes to the unconstrained output: a build with the tag would break,
// which the warning says.
func TestWarningConstrainedFile(t *testing.T) {
	dir := badModule(t, map[string]string{
		"a.go": "package ok\n\n//purgatory:circuit\ntype A interface{ Do() error }\n",
		"b.go": "//go:build !custom\n\npackage ok\n\n//purgatory:circuit\ntype B interface{ Do() error }\n",
	})
	var warns []string
	_, err := generator.Generate(generator.Config{Dir: dir, Warn: func(e *generator.Error) { warns = append(warns, e.Error()) }})
	require.NoError(t, err)
	assert.Equal(t, []string{"b.go:6:6: B is declared under //go:build !custom, but its wrapper goes to purgatory_gen.go, which has no build constraint: a build where that does not hold fails with undefined: B; declare B in a file without a build constraint"}, warns)
}

// TestErrorsQualifierNotImported: the qualifier of an entry names a
// package that this file does not import, but that the package depends on
// or that other files import under that name as different packages.
func TestErrorsQualifierNotImported(t *testing.T) {
	t.Run("dependency", func(t *testing.T) {
		dir := badModule(t, map[string]string{"bad.go": `package bad

import "sync"

var _ sync.Mutex

//purgatory:circuit exclude=atomic.Bool
type A interface{ Do() error }
`})
		assert.Equal(t, "bad.go:7:29: exclude atomic.Bool: undefined: atomic; this file does not import it: write the import path instead, such as sync/atomic.Name", generateErr(t, dir))
	})
	t.Run("two packages of that name", func(t *testing.T) {
		dir := badModule(t, map[string]string{
			"a.go": "package bad\n\nimport \"math/rand\"\n\nvar _ = rand.Int\n",
			"b.go": "package bad\n\nimport \"crypto/rand\"\n\nvar _ = rand.Reader\n",
			"bad.go": `package bad

//purgatory:circuit ignore=rand.ErrX
type A interface{ Do() error }
`})
		assert.Equal(t, "bad.go:3:28: ignore rand.ErrX: undefined: rand (files of bad import different packages as rand); write the import path instead, such as math/rand.Name", generateErr(t, dir))
	})
}
