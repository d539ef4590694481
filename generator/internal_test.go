package generator

import (
	"fmt"
	"go/ast"
	"go/token"
	"testing"
	"time"

	"github.com/dave/jennifer/jen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
)

func TestLowerCamel(t *testing.T) {
	for in, want := range map[string]string{
		"payments":        "payments",
		"payments-refund": "paymentsRefund",
		"pkg.Foo":         "pkgFoo",
		"store/get.v2":    "storeGetV2",
		"2fa":             "c2fa",
		"Upper_case":      "upperCase",
		"---":             "",
		"héllo wörld":     "hLloWRld",
	} {
		assert.Equal(t, want, lowerCamel(in), in)
	}
}

func TestImportPath(t *testing.T) {
	assert.Equal(t, "github.com/a/b", importPath("github.com/a/b"))
	assert.Equal(t, "github.com/x/y", importPath("example.com/app/vendor/github.com/x/y"))
	assert.Equal(t, "foo", importPath("vendor/foo"))
	assert.Equal(t, "example.com/vendors/x", importPath("example.com/vendors/x"))
}

func TestSuggest(t *testing.T) {
	assert.Equal(t, "threshold", suggest("treshold", keys))
	assert.Equal(t, "ttl", suggest("tll", keys))
	assert.Equal(t, "trials", suggest("trails", keys))
	assert.Equal(t, "exclude", suggest("exlcude", keys))
	assert.Equal(t, "", suggest("foo", keys))
	assert.Equal(t, "", suggest("x", nil))
	assert.Equal(t, 3, distance("kitten", "sitting"))
	assert.Equal(t, 0, distance("", ""))
}

func TestTTLCode(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:        "30 * time.Second",
		1500 * time.Millisecond: "1500 * time.Millisecond",
		time.Minute:             "time.Minute",
		90 * time.Minute:        "90 * time.Minute",
		2 * time.Hour:           "2 * time.Hour",
		7 * time.Nanosecond:     "7 * time.Nanosecond",
		1500 * time.Microsecond: "1500 * time.Microsecond",
	} {
		assert.Equal(t, want, fmt.Sprintf("%#v", jen.Add(ttlCode(d))), d.String())
	}
}

func TestParsePos(t *testing.T) {
	assert.Equal(t, token.Position{Filename: "/a/b.go", Line: 3, Column: 7}, parsePos("/a/b.go:3:7"))
	assert.Equal(t, token.Position{Filename: "/a/b.go", Line: 3}, parsePos("/a/b.go:3"))
	assert.Equal(t, token.Position{Filename: "-"}, parsePos("-"))
	assert.Equal(t, token.Position{Filename: "C:/x.go", Line: 1, Column: 2}, parsePos("C:/x.go:1:2"))
}

func TestErrorString(t *testing.T) {
	assert.Equal(t, "a.go:1:2: m", (&Error{Pos: token.Position{Filename: "a.go", Line: 1, Column: 2}, Msg: "m"}).Error())
	assert.Equal(t, "a.go:1: m", (&Error{Pos: token.Position{Filename: "a.go", Line: 1}, Msg: "m"}).Error())
	assert.Equal(t, "pkg: m", (&Error{Pos: token.Position{Filename: "pkg"}, Msg: "m"}).Error())
	assert.Equal(t, "m", (&Error{Msg: "m"}).Error())
}

func TestWrapperNames(t *testing.T) {
	for name, want := range map[string][2]string{
		"Foo":    {"FooCircuit", "NewFooCircuit"},
		"foo":    {"fooCircuit", "newFooCircuit"},
		"服务":     {"服务Circuit", "new服务Circuit"},
		"équipe": {"équipeCircuit", "newÉquipeCircuit"},
		"Équipe": {"ÉquipeCircuit", "NewÉquipeCircuit"},
	} {
		w, c := wrapperNames(name)
		assert.Equal(t, want, [2]string{w, c}, name)
		assert.True(t, token.IsIdentifier(c), c)
	}
}

func TestPathNames(t *testing.T) {
	assert.Equal(t, []string{"corev1", "apicorev1", "k8sioapicorev1"}, pathNames("k8s.io/api/core/v1", "v1"))
	assert.Equal(t, []string{"typedcorev1", "kubernetestypedcorev1"}, pathNames("k8s.io/client-go/kubernetes/typed/core/v1", "v1")[1:3])
	assert.Equal(t, []string{"xfoo"}, pathNames("x/foo/foo", "foo"), "a parent named like the package adds nothing")
	assert.Empty(t, pathNames("context", "context"))
}

func TestCanImport(t *testing.T) {
	assert.True(t, canImport("example.com/a", "example.com/a/internal/x"))
	assert.True(t, canImport("example.com/a/b", "example.com/a/internal"))
	assert.False(t, canImport("example.com/b", "example.com/a/internal/x"))
	assert.False(t, canImport("example.com/ab", "example.com/a/internal/x"))
	assert.False(t, canImport("example.com/a", "internal/poll"))
	assert.True(t, canImport("net", "internal/poll"))
	assert.True(t, canImport("example.com/a", "example.com/internalx"))
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"50%": 50, "1%": 1, "100%": 100, "12.5%": 12.5} {
		got, ok := parseRate(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"0%", "0.5%", "101%", "50", "%", "x%", "-5%"} {
		_, ok := parseRate(in)
		assert.False(t, ok, in)
	}
}

func TestParseDirective(t *testing.T) {
	c := &ast.Comment{Slash: 1, Text: `//purgatory:circuit name="a b \"c\"" exclude=A, B,C skip=X`}
	d, ok := parseDirective(c)
	require.True(t, ok)
	assert.Equal(t, "circuit", d.kind)
	assert.Empty(t, d.bad)
	require.Len(t, d.args, 3)
	assert.Equal(t, `a b "c"`, d.args[0].value)
	var items []string
	for _, it := range d.args[1].items {
		items = append(items, it.text)
		assert.Equal(t, it.text, c.Text[it.pos-1:int(it.pos)-1+len(it.text)], "the position of %s", it.text)
	}
	assert.Equal(t, []string{"A", "B", "C"}, items)
	assert.Equal(t, "X", d.args[2].value)

	_, ok = parseDirective(&ast.Comment{Text: "// purgatory:circuit"})
	assert.False(t, ok)
}

func TestIsEmptyContent(t *testing.T) {
	assert.True(t, isEmptyContent(emptyFile("x")))
	assert.False(t, isEmptyContent(append(emptyFile("x"), "\nvar _ = 1\n"...)))
	assert.False(t, isEmptyContent([]byte("package x\n")))
}

func TestArticle(t *testing.T) {
	for word, want := range map[string]string{
		"APICircuit": "an", "OrdersCircuit": "an", "UsersCircuit": "a", "UnitCircuit": "a",
		"URLCircuit": "a", "UpdaterCircuit": "an", "PaymentClient": "a", "": "a",
		"S3": "an", "S3API": "an", "HTTPClient": "an", "FS": "an", "KVStore": "a", "équipe": "an", "服务": "a",
	} {
		assert.Equal(t, want, article(word), word)
	}
}

// TestBoundsAgreeWithStore: the generator refuses what the runtime would
// refuse (by panicking) when the breaker is built.
func TestBoundsAgreeWithStore(t *testing.T) {
	assert.Equal(t, store.MaxCount, maxCountBound)
	assert.Equal(t, store.MaxMinCalls, maxMinCalls)
	assert.Equal(t, store.MaxPeriod, maxPeriod)
	assert.Equal(t, store.MinWindow, minWindow)
	assert.Equal(t, purgatory.MaxSlowCall, maxSlowCall)
}
