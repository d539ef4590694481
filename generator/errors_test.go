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

// badModule writes a module of its own (no dependencies) with one package
// made of files, and returns its directory.
func badModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/bad\n\ngo 1.24\n"), 0o644))
	for name, src := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
	}
	return dir
}

// generateErr runs Generate on the module and returns its error text; it
// fails the test if any file would be written.
func generateErr(t *testing.T, dir string) string {
	t.Helper()
	files, err := generator.Generate(generator.Config{Dir: dir})
	require.Error(t, err)
	assert.Empty(t, files, "nothing is generated when there is an error")
	_, statErr := os.Stat(filepath.Join(dir, generator.DefaultOutput))
	assert.True(t, os.IsNotExist(statErr))
	return err.Error()
}

// The annotations of the first interface have one mistake per key, so
// that the test also checks that every error is reported, in order.
const badSource = `package bad

import (
	"context"
	"database/sql"
	"errors"
)

var ErrNotFound = errors.New("not found")

const Limit = 3

var Count int

type PtrErr struct{}

func (*PtrErr) Error() string { return "ptr" }

type NotErr struct{}

func Wrong(err error) string { return "" }

//purgatory:circuit treshold=5 foo=1 threshold=0 ttl=5 trials=x name= exclude=ErrNotFoud,Limit,Count,Wrong,PtrErr,*NotErr,sqll.ErrNoRows,sql.ErrNoRow,,context,Qqqzzz
type A interface {
	Do(ctx context.Context) (*sql.Rows, error)
}

//purgatory:circuit threshold=1 threshold=2 ttl=-1s bogus
type B interface {
	//purgatory:circuit name=b-len
	Len() int
	//purgatory:skip now
	Close() error
	//purgatory:skipp
	Open() error
}

//purgatory:circuit
type NotAnInterface struct{}

//purgatory:circuit
func F() {}

//purgatory:circut name=x
type C interface {
	Do() error
}

type D interface {
	//purgatory:skip
	Do() error
}

//purgatory:circuit name=shared threshold=3
type E1 interface{ Do() error }

//purgatory:circuit name=shared threshold=4
type E2 interface{ Do() error }

//purgatory:circuit
type Constraint interface {
	~int
	Do() error
}
`

func TestErrors(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": badSource})
	want := []string{
		`bad.go:23:21: unknown key "treshold" (did you mean "threshold"?)`,
		`bad.go:23:32: unknown key "foo" (the keys are name, threshold, ttl, trials, exclude, skip, rate, window, min, slow, maxttl)`,
		`bad.go:23:48: bad value for threshold: "0" is not an integer >= 1`,
		`bad.go:23:54: bad value for ttl: "5" is not a duration > 0 such as 30s or 1m30s`,
		`bad.go:23:63: bad value for trials: "x" is not an integer >= 1`,
		`bad.go:23:70: bad value for name: empty`,
		`bad.go:23:79: exclude ErrNotFoud: undefined: ErrNotFoud (did you mean ErrNotFound?)`,
		`bad.go:23:90: exclude Limit: Limit is a constant of type untyped int, which does not implement error; exclude takes an error variable, an error type or a func(error) bool`,
		`bad.go:23:96: exclude Count: variable of type int is not an error`,
		`bad.go:23:102: exclude Wrong: func Wrong has type func(err error) string, not func(error) bool`,
		`bad.go:23:108: exclude PtrErr: type PtrErr does not implement error (did you mean *PtrErr?)`,
		`bad.go:23:115: exclude *NotErr: type *NotErr does not implement error`,
		`bad.go:23:123: exclude sqll.ErrNoRows: undefined: sqll (did you mean sql?)`,
		`bad.go:23:138: exclude sql.ErrNoRow: undefined: sql.ErrNoRow (did you mean sql.ErrNoRows?)`,
		`bad.go:23:151: bad value for exclude: empty entry`,
		`bad.go:23:152: exclude context: context is a package, not an error variable, an error type or a func(error) bool`,
		`bad.go:23:160: exclude Qqqzzz: undefined: Qqqzzz; exclude names error variables, error types and func(error) bool predicates declared in this package or in a package this file imports`,
		`bad.go:28:33: duplicate key "threshold" (the first is at bad.go:28:21)`,
		`bad.go:28:49: bad value for ttl: "-1s" is not a duration > 0 such as 30s or 1m30s`,
		`bad.go:28:53: expected key=value, got "bogus"`,
		`bad.go:30:14: method Len has no error result for its circuit to count; remove //purgatory:circuit or use //purgatory:skip`,
		`bad.go:32:14: //purgatory:skip takes no arguments`,
		`bad.go:34:14: unknown directive //purgatory:skipp (did you mean //purgatory:skip?)`,
		`bad.go:38:13: //purgatory:circuit on NotAnInterface, which is not an interface type; annotate the interface that your code calls`,
		`bad.go:41:13: //purgatory:circuit must be in the doc comment of an interface type or of one of its methods`,
		`bad.go:44:13: unknown directive //purgatory:circut (did you mean //purgatory:circuit?)`,
		`bad.go:50:14: //purgatory:skip on a method of D, which has no //purgatory:circuit annotation`,
		`bad.go:57:13: circuit "shared" is declared here with threshold=4 but at bad.go:54:13 with threshold=3`,
		`bad.go:61:6: Constraint is a constraint interface (it has a type set); only basic interfaces can be wrapped`,
	}
	assert.Equal(t, strings.Join(want, "\n"), generateErr(t, dir))
}

func TestErrorsOneByOne(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{{
		name: "type error",
		src: `package bad

func f() { undefined() }

//purgatory:circuit
type A interface{ Do() error }
`,
		want: `bad.go:3:12: undefined: undefined`,
	}, {
		name: "syntax error",
		src: `package bad

func f( {
`,
		want: "bad.go:3:9: expected ')', found '{'\n" +
			"bad.go:3:11: expected ')', found 'EOF'\n" +
			"bad.go:3:11: expected ';', found 'EOF'\n" +
			"bad.go:3:11: missing ',' in parameter list",
	}, {
		name: "per-method circuit clashes with the interface's",
		src: `package bad

//purgatory:circuit name=x threshold=2
type A interface {
	//purgatory:circuit name=x threshold=3
	Do() error
}
`,
		want: `bad.go:5:14: circuit "x" is declared here with threshold=3 but at bad.go:3:13 with threshold=2`,
	}, {
		name: "value error type with pointer receiver is fine, value without is not",
		src: `package bad

type E struct{}

func (E) Error() string { return "" }

//purgatory:circuit exclude=E,*E,error
type A interface{ Do() error }

//purgatory:circuit exclude=*int
type B interface{ Do() error }
`,
		want: `bad.go:10:29: exclude *int: type *int does not implement error`,
	}, {
		name: "directive on an embedded interface",
		src: `package bad

type I interface{ Do() error }

//purgatory:circuit
type A interface {
	//purgatory:skip
	I
}
`,
		want: `bad.go:7:14: //purgatory:skip on an embedded interface; annotate the methods of the interface that declares them, or declare them here`,
	}, {
		name: "duplicate directives",
		src: `package bad

//purgatory:circuit
//purgatory:circuit name=y
type A interface {
	//purgatory:skip
	//purgatory:circuit
	Do() error
}
`,
		want: "bad.go:4:13: duplicate //purgatory:circuit (the first is at bad.go:3:13)\n" +
			"bad.go:7:14: method Do has both //purgatory:skip and //purgatory:circuit",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := badModule(t, map[string]string{"bad.go": c.src})
			assert.Equal(t, c.want, generateErr(t, dir))
		})
	}
}

func TestErrorsGeneratedNames(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": `package bad

type ACircuit struct{}

//purgatory:circuit
type A interface{ Do() error }

//purgatory:circuit
type B interface {
	WithFallback(B) B
	Do() error
}
`})
	assert.Equal(t, "bad.go:5:13: cannot generate ACircuit: it is already declared at bad.go:3:6; rename one of them\n"+
		"bad.go:9:6: B has a method WithFallback, which the generated wrapper declares itself", generateErr(t, dir))
}

func TestErrorsUnexportedFromOtherPackage(t *testing.T) {
	dir := badModule(t, map[string]string{
		"bad.go": `package bad

import "example.com/bad/dep"

//purgatory:circuit
type A interface {
	dep.Hidden
}

//purgatory:circuit
type B interface {
	dep.Getter
	Alias() (dep.Exposed, error) // fine: the alias is exported
}

//purgatory:circuit
type C interface {
	dep.Anon
}
`})
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "dep"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dep", "dep.go"), []byte(`package dep

type Hidden interface{ hidden() error }

type secret struct{}

type Exposed = secret

type Getter interface{ Get() (secret, error) }

type Anon interface {
	Struct() (struct{ n int }, error)
	Iface() (interface{ m() }, error)
}
`), 0o644))
	assert.Equal(t, "bad.go:6:6: A has the unexported method hidden of package example.com/bad/dep, which cannot be implemented outside it\n"+
		"bad.go:11:6: method Get of B uses example.com/bad/dep.secret, which is not exported by its package\n"+
		"bad.go:17:6: method Iface of C uses an unexported method of example.com/bad/dep, which is not exported by its package\n"+
		"bad.go:17:6: method Struct of C uses an unexported struct field of example.com/bad/dep, which is not exported by its package",
		generateErr(t, dir))
}
