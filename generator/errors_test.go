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
		`bad.go:23:32: unknown key "foo" (the keys are name, threshold, ttl, trials, exclude, ignore, skip, rate, window, min, slow, maxttl, key, maxkeys, result)`,
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
	}, {
		name: "skip on the interface, skip twice on a method",
		src: `package bad

//purgatory:circuit
//purgatory:skip
type A interface {
	//purgatory:skip
	//purgatory:skip
	Do() error
	Get() error
}
`,
		want: "bad.go:4:13: //purgatory:skip applies to interface methods, not to types\n" +
			"bad.go:7:14: duplicate //purgatory:skip",
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

// TestErrorsIssue11 has one case per mistake of issue 11 that
// purgatorygen used to let through (or report badly).
func TestErrorsIssue11(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{{
		name: "generated names clash with each other",
		src: `package bad

//purgatory:circuit
type Foo interface{ Do() error }

//purgatory:circuit
type NewFoo interface{ Do() error }

//purgatory:circuit
type store interface{ Do() error }

//purgatory:circuit
type newStore interface{ Do() error }
`,
		want: "bad.go:6:13: cannot generate NewFooCircuit for NewFoo: it is also generated for Foo (at bad.go:4:6); rename one of the interfaces, or generate them into different files with -type and -o\n" +
			"bad.go:12:13: cannot generate newStoreCircuit for newStore: it is also generated for store (at bad.go:10:6); rename one of the interfaces, or generate them into different files with -type and -o",
	}, {
		name: "blank interface name",
		src: `package bad

//purgatory:circuit
type _ interface{ Do() error }
`,
		want: "bad.go:3:13: //purgatory:circuit on the blank type _, which code cannot name; give the interface a name",
	}, {
		name: "a space after //",
		src: `package bad

// purgatory:circuit name=x
type A interface{ Do() error }

//purgatory:circuit
type B interface {
	Do() error
	// purgatory:skip
	Close() error
}

/* purgatory:circuit */
type C interface{ Do() error }
`,
		want: "bad.go:3:1: this comment is not read as a directive: write //purgatory:circuit, with no space after // (the go tool's rule for directives)\n" +
			"bad.go:9:2: this comment is not read as a directive: write //purgatory:skip, with no space after // (the go tool's rule for directives)\n" +
			"bad.go:13:1: this comment is not read as a directive: write //purgatory:circuit, with no space after // (the go tool's rule for directives)",
	}, {
		name: "skip= entries",
		src: `package bad

//purgatory:circuit skip=Pingg,Close,a.b
type A interface {
	Do() error
	Ping() error
	Close() error

	//purgatory:circuit skip=Do
	Other() error
}

//purgatory:circuit skip=Ping
type B interface {
	Do() error

	//purgatory:circuit name=ping
	Ping() error
}
`,
		want: "bad.go:3:26: skip Pingg: A has no method Pingg (did you mean Ping?)\n" +
			"bad.go:3:38: bad value for skip: \"a.b\" is not a method name (write skip=Close,Ping)\n" +
			"bad.go:9:22: skip= belongs on the interface's annotation; to forward this method without a breaker, write //purgatory:skip instead of //purgatory:circuit\n" +
			"bad.go:17:14: method Ping has //purgatory:circuit but is in the skip list at bad.go:13:26; remove one of them",
	}, {
		name: "nothing guarded",
		src: `package bad

import "io"

type Err struct{}

func (*Err) Error() string { return "" }

//purgatory:circuit
type Empty interface{}

//purgatory:circuit
type Closer interface{ io.Closer }

//purgatory:circuit
type Getters interface {
	Name() string
	Get() (string, *Err)
}

//purgatory:circuit skip=Do
type Skipped interface {
	Do() error
	//purgatory:skip
	Undo() error
}
`,
		want: "bad.go:9:13: no method of Empty goes through a breaker: it has no methods; the wrapper would only forward calls: remove //purgatory:circuit\n" +
			"bad.go:12:13: no method of Closer goes through a breaker: Close (Close is not guarded unless annotated); the wrapper would only forward calls: remove //purgatory:circuit\n" +
			"bad.go:15:13: no method of Getters goes through a breaker: Name (no error result); Get (its last result is a concrete error type, not error: declare it as error to guard it); the wrapper would only forward calls: remove //purgatory:circuit\n" +
			"bad.go:21:13: no method of Skipped goes through a breaker: Undo (//purgatory:skip); Do (skip=); the wrapper would only forward calls: remove //purgatory:circuit",
	}, {
		name: "exclude of a package the file does not import",
		src: `package bad

import "context"

//purgatory:circuit exclude=sql.ErrNoRows,example.com/nope.ErrX,contxt.Canceled
type A interface{ Do(ctx context.Context) error }
`,
		want: "bad.go:5:29: exclude sql.ErrNoRows: undefined: sql; this file imports no package of that name: write the import path, such as database/sql.ErrNoRows\n" +
			"bad.go:5:43: exclude example.com/nope.ErrX: cannot load package example.com/nope: no required module provides package example.com/nope; to add it:\n\tgo get example.com/nope\n" +
			"bad.go:5:65: exclude contxt.Canceled: undefined: contxt (did you mean context?)",
	}, {
		name: "quotes and list spacing",
		src: `package bad

//purgatory:circuit name="unterminated
type A interface{ Do() error }

//purgatory:circuit name="a"b
type B interface{ Do() error }

//purgatory:circuit exclude=ErrA ,ErrB
type C interface{ Do() error }
`,
		want: "bad.go:3:26: unterminated or malformed quoted value \"unterminated\n" +
			"bad.go:6:26: a quoted value must be followed by a space\n" +
			"bad.go:9:29: exclude ErrA: undefined: ErrA; exclude names error variables, error types and func(error) bool predicates declared in this package or in a package this file imports\n" +
			"bad.go:9:34: a list takes no space before a comma: write exclude=A,B",
	}, {
		name: "annotation errors beside type errors",
		src: `package bad

//purgatory:circuit treshold=3
type Store interface{ Do() error }

var _ = NewStoreCircuit(nil, nil)

func f() { undefined() }
`,
		want: "bad.go:3:21: unknown key \"treshold\" (did you mean \"threshold\"?)\n" +
			"bad.go:8:12: undefined: undefined",
	}, {
		name: "missing module",
		src: `package bad

import "github.com/nope/nope"

//purgatory:circuit
type A interface{ Do(nope.X) error }
`,
		want: "bad.go:3:8: no required module provides package github.com/nope/nope; to add it:\n\tgo get github.com/nope/nope",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := badModule(t, map[string]string{"bad.go": c.src})
			assert.Equal(t, c.want, generateErr(t, dir))
		})
	}
}

// TestErrorsPolicyKeys has a bad value for each policy key, and the rules
// between them.
func TestErrorsPolicyKeys(t *testing.T) {
	dir := badModule(t, map[string]string{"bad.go": `package bad

//purgatory:circuit rate=0% window=0s min=0 slow=-1s maxttl=x
type A interface{ Do() error }

//purgatory:circuit rate=101%
type B interface{ Do() error }

//purgatory:circuit rate=50 window=1m
type C interface{ Do() error }

//purgatory:circuit window=1m min=5
type D interface{ Do() error }

//purgatory:circuit ttl=10s maxttl=10s
type E interface{ Do() error }

//purgatory:circuit name=f rate=50% maxttl=1m
type F interface {
	// Inherits rate: min is fine. Its ttl is not below the inherited maxttl.
	//purgatory:circuit min=5 ttl=2m
	Do() error
}

//purgatory:circuit name=shared rate=50%
type G1 interface{ Do() error }

//purgatory:circuit name=shared rate=40% window=1m
type G2 interface{ Do() error }

//purgatory:circuit slow=169h
type H interface{ Do() error }

//purgatory:circuit slow=168h
type I interface{ Do() error }

//purgatory:circuit ttl=169h maxttl=170h threshold=1000001 trials=2000000
type J interface{ Do() error }

//purgatory:circuit rate=50% window=500us min=1000000001
type K interface{ Do() error }
`})
	want := []string{
		`bad.go:3:26: bad value for rate: "0%" is not a percentage from 1% to 100% such as 50%`,
		`bad.go:3:36: bad value for window: "0s" is not a duration > 0 such as 30s or 1m30s`,
		`bad.go:3:43: bad value for min: "0" is not an integer >= 1`,
		`bad.go:3:50: bad value for slow: "-1s" is not a duration > 0 such as 30s or 1m30s`,
		`bad.go:3:61: bad value for maxttl: "x" is not a duration > 0 such as 30s or 1m30s`,
		`bad.go:6:26: bad value for rate: "101%" is not a percentage from 1% to 100% such as 50%`,
		`bad.go:9:26: bad value for rate: "50" is not a percentage from 1% to 100% such as 50%`,
		`bad.go:12:21: window= applies to the failure rate, which is not set; add rate= (such as rate=50%) or remove window=`,
		`bad.go:12:31: min= applies to the failure rate, which is not set; add rate= (such as rate=50%) or remove min=`,
		`bad.go:15:29: maxttl=10s is not above ttl=10s: the open period could never grow; raise maxttl or remove it`,
		`bad.go:21:28: maxttl=1m0s is not above ttl=2m0s: the open period could never grow; raise maxttl or remove it`,
		`bad.go:28:13: circuit "shared" is declared here with rate=40% window=1m0s but at bad.go:25:13 with rate=50%`,
		`bad.go:31:26: bad value for slow: "169h" is above 168h0m0s, the longest slow call the runtime times; lower slow=`,
		`bad.go:37:25: bad value for ttl: "169h" is above 168h0m0s, the longest period every store accepts; lower ttl=`,
		`bad.go:37:37: bad value for maxttl: "170h" is above 168h0m0s, the longest period every store accepts; lower maxttl=`,
		`bad.go:37:52: bad value for threshold: "1000001" is above 1000000, the most every store accepts; lower threshold=`,
		`bad.go:37:67: bad value for trials: "2000000" is above 1000000, the most every store accepts; lower trials=`,
		`bad.go:40:37: bad value for window: "500us" is below 1ms, the shortest window every store accepts; raise window=`,
		`bad.go:40:47: bad value for min: "1000000001" is above 1000000000, the most every store accepts; lower min=`,
	}
	assert.Equal(t, strings.Join(want, "\n"), generateErr(t, dir))
}

// TestErrorsInternalPackage reports a method, from an embedded interface,
// that uses a type of an internal package the annotated package cannot
// import.
func TestErrorsInternalPackage(t *testing.T) {
	dir := badModule(t, map[string]string{
		"bad.go": `package bad

import "example.com/bad/dep"

//purgatory:circuit
type A interface {
	dep.API
}
`})
	for name, src := range map[string]string{
		"dep/dep.go":                "package dep\n\nimport \"example.com/bad/dep/internal/wire\"\n\n// API uses an internal type.\ntype API interface{ Send(wire.Msg) error }\n",
		"dep/internal/wire/wire.go": "package wire\n\n// Msg is internal to dep.\ntype Msg struct{}\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	}
	assert.Equal(t, "bad.go:6:6: method Send of A uses example.com/bad/dep/internal/wire.Msg, from an internal package that example.com/bad cannot import; declare the method in bad with a type it can name",
		generateErr(t, dir))
}

// TestWarnings: methods forwarded only for want of an error result are
// named once per interface (the forwarded Close left out of the counts,
// "most" said first), guarded methods whose result carries a status
// without result= are named with the fix, and the run succeeds.
func TestWarnings(t *testing.T) {
	dir := badModule(t, map[string]string{"ok.go": `package ok

import (
	"context"
	"net/http"
)

type Err struct{}

func (*Err) Error() string { return "" }

//purgatory:circuit
type A interface {
	Do() error
	Name() string
	Get() (int, *Err)
	Close() error
}

//purgatory:circuit skip=Name
type B interface {
	Do() error
	Name() string
	Get() (string, error)
	Put() error
	Size() int
}

// Result carries its error, like rueidis's RedisResult.
type Result struct{}

func (Result) Error() error { return nil }

// Answer has a status, like Elasticsearch's esapi.Response.
type Answer struct{ StatusCode int }

//purgatory:circuit
type Redis interface {
	Do(ctx context.Context, cmd string) Result
	DoCache(ctx context.Context, cmd string) Result
	Receive(ctx context.Context, cmd string) error
	Close()
}

//purgatory:circuit
type HTTP interface {
	RoundTrip(req *http.Request) (*http.Response, error)
	Search(ctx context.Context, q string) (*Answer, error)

	//purgatory:circuit result=Classify
	Get(ctx context.Context, url string) (*http.Response, error)
}

func Classify(*http.Response, error) error { return nil }
`})
	var warns []string
	files, err := generator.Generate(generator.Config{Dir: dir, Warn: func(e *generator.Error) { warns = append(warns, e.Error()) }})
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, []string{
		"ok.go:13:6: A: most methods are forwarded without a breaker, also while the circuit is open (2 of 3 methods, Close aside): Name (no error result); Get (its last result is a concrete error type, not error: declare it as error to guard it); list them in skip= to silence this warning",
		"ok.go:21:6: B: 1 of 5 methods is forwarded without a breaker: Size (no error result); list it in skip= to silence this warning",
		"ok.go:38:6: Redis: most methods are forwarded without a breaker, also while the circuit is open (3 of 4 methods): Do, DoCache, Close (no error result); Do, DoCache return an error inside their result (an Err() or Error() method returning error), which a wrapper cannot return a rejection in: to guard them, declare an interface whose methods return (T, error), implemented by an adapter, and annotate it (result= classifies what they return); or list them in skip= to silence this warning",
		"ok.go:47:2: HTTP.RoundTrip returns *http.Response, whose status its circuit does not see: an error answer with a nil error counts as a success; add result=httpcircuit.Classify (5xx, 429 and transport errors fail; no import needed) or a func(*http.Response, error) error of your own",
		"ok.go:48:2: HTTP.Search returns *Answer, whose status its circuit does not see: an error answer with a nil error counts as a success; add result=FUNC, a func(*Answer, error) error that returns the error to count",
	}, warns)
}

// TestTypeFlagIgnoresOthers: -type A is not stopped by mistakes in B.
func TestTypeFlagIgnoresOthers(t *testing.T) {
	dir := badModule(t, map[string]string{"m.go": `package m

//purgatory:circuit name=x threshold=2
type A interface{ Do() error }

//purgatory:circuit name=x threshold=3 treshold=1
type B interface{ Do() error }

type ACircuit2 struct{}

//purgatory:circuit
type NewA interface{ Do() error }
`})
	files, err := generator.Generate(generator.Config{Dir: dir, Types: []string{"A"}})
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Contains(t, string(files[0].Content), "type ACircuit struct")
	assert.NotContains(t, string(files[0].Content), "BCircuit")
	_, err = generator.Generate(generator.Config{Dir: dir})
	require.Error(t, err, "without -type, B's mistakes count")
}
