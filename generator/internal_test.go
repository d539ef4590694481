package generator

import (
	"fmt"
	"go/token"
	"testing"
	"time"

	"github.com/dave/jennifer/jen"
	"github.com/stretchr/testify/assert"
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
	w, c := wrapperNames("Foo")
	assert.Equal(t, []string{"FooCircuit", "NewFooCircuit"}, []string{w, c})
	w, c = wrapperNames("foo")
	assert.Equal(t, []string{"fooCircuit", "newFooCircuit"}, []string{w, c})
}

func TestArticle(t *testing.T) {
	for word, want := range map[string]string{
		"APICircuit": "an", "OrdersCircuit": "an", "UsersCircuit": "a", "UnitCircuit": "a",
		"URLCircuit": "a", "UpdaterCircuit": "an", "PaymentClient": "a", "": "a",
	} {
		assert.Equal(t, want, article(word), word)
	}
}
