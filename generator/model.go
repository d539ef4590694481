package generator

// The model: what the validate step builds and the emit step reads.

import (
	"go/build/constraint"
	"go/token"
	"go/types"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// model is what emit needs to write one package's file.
type model struct {
	pkg    *types.Package
	ifaces []*ifaceModel
	// taken are the package-scope names of the package (those of the old
	// generated file excepted): import names must not clash with them.
	taken map[string]bool
	// constraint is the build constraint of the file, or nil: with tags,
	// that of the files that declare its interfaces (see Config.Tags).
	constraint constraint.Expr
}

// ifaceModel is one annotated interface.
type ifaceModel struct {
	obj      *types.TypeName
	methods  []*methodModel
	circuits []*circuit // distinct circuits its methods use, in first-use order
}

// name returns the interface's name.
func (m *ifaceModel) name() string { return m.obj.Name() }

// typeParams returns the interface's type parameters, if it is generic (a
// generic defined type or a generic alias).
func (m *ifaceModel) typeParams() *types.TypeParamList {
	switch t := m.obj.Type().(type) {
	case *types.Named:
		return t.TypeParams()
	case *types.Alias:
		return t.TypeParams()
	}
	return nil
}

// methodModel is one method of the wrapper.
type methodModel struct {
	fn      *types.Func
	sig     *types.Signature
	circuit *circuit      // nil when forwarded
	forward forwardReason // why it is forwarded, or guarded
	ctx     ctxSource     // where a guarded call takes its context from
	key     *keyPath      // guarded, key=: the expression giving the circuit's key
	result  *resultFunc   // guarded, result=: the function giving the error counted
}

// forwardReason says why a method is forwarded without a breaker.
type forwardReason uint8

const (
	guarded              forwardReason = iota
	forwardNoError                     // its last result is not error
	forwardConcreteError               // its last result is a concrete error type (*MyErr)
	forwardSkip                        // //purgatory:skip
	forwardSkipKey                     // in the interface's skip= list
	forwardClose                       // Close() error, never guarded unless annotated
)

// ctxSource says where a guarded method's context comes from.
type ctxSource struct {
	param   int  // index of the parameter, or -1: no context is known
	method  bool // the parameter's Context() (*http.Request), not the parameter
	nilable bool // method only: the parameter may be nil (then no context is known)
}

// excludeKind says how an exclude entry matches errors.
type excludeKind uint8

const (
	exVar  excludeKind = iota // an error variable: purgatory.Is(v)
	exType                    // an error type: purgatory.As[T]()
	exPred                    // a func(error) bool: used as is
)

// exclude is one resolved exclude entry.
type exclude struct {
	kind excludeKind
	pkg  *types.Package // nil for the universe
	name string
	ptr  bool   // exType only: *T
	text string // as written in the annotation
}

// key identifies the entry whatever its spelling.
func (e exclude) key() string {
	k := e.name
	if e.pkg != nil {
		k = e.pkg.Path() + "." + k
	}
	if e.ptr {
		k = "*" + k
	}
	return k
}

// resultFunc is the resolved value of result=: a package-level function
// (or variable of function type) from a method's results to the error its
// circuit counts.
type resultFunc struct {
	obj   types.Object // *types.Func or *types.Var
	sig   *types.Signature
	text  string    // as written in the annotation
	pos   token.Pos // of the value
	local bool      // declared in the annotated package
}

// name returns how docs name the function: pkg.Name, or Name for one
// declared in the package of the interface (local).
func (r *resultFunc) name() string {
	if r.local {
		return r.obj.Name()
	}
	return r.obj.Pkg().Name() + "." + r.obj.Name()
}

// keyExpr is the value of key= as written: a parameter, then fields and
// niladic methods, each at its position. It is resolved per method (see
// keyPath).
type keyExpr struct {
	text string
	segs []keySeg
}

// keySeg is one dotted element of key=.
type keySeg struct {
	name string
	call bool // written with () (a method)
	pos  token.Pos
}

// settings are what a //purgatory:circuit annotation configures. Zero
// values leave the factory's default.
type settings struct {
	name      string
	threshold int
	ttl       time.Duration
	trials    int
	excludes  []exclude
	ignores   []exclude
	rate      float64 // percent, in [1, 100]; 0: no rate policy
	window    time.Duration
	minCalls  int
	slow      time.Duration
	maxTTL    time.Duration
	maxKeys   int
	// key and result are resolved per method; of them, only whether the
	// circuit is keyed is part of its identity (a group, not a breaker).
	key    *keyExpr
	result *resultFunc
}

// equal reports whether a and b configure the same breaker (or group).
func (s *settings) equal(o *settings) bool {
	a, b := *s, *o
	a.excludes, b.excludes, a.ignores, b.ignores = nil, nil, nil, nil
	a.key, b.key, a.result, b.result = nil, nil, nil, nil
	return reflect.DeepEqual(a, b) && (s.key == nil) == (o.key == nil) &&
		slices.Equal(entryKeys(s.excludes), entryKeys(o.excludes)) && slices.Equal(entryKeys(s.ignores), entryKeys(o.ignores))
}

// entryKeys returns the identities of exclude or ignore entries, sorted.
func entryKeys(es []exclude) []string {
	var ks []string
	for _, e := range es {
		ks = append(ks, e.key())
	}
	sort.Strings(ks)
	return slices.Compact(ks)
}

// String gives the settings as an annotation would write them.
func (s *settings) String() string {
	var parts []string
	if s.threshold > 0 {
		parts = append(parts, keyThreshold+"="+strconv.Itoa(s.threshold))
	}
	if s.ttl > 0 {
		parts = append(parts, keyTTL+"="+s.ttl.String())
	}
	if s.trials > 0 {
		parts = append(parts, keyTrials+"="+strconv.Itoa(s.trials))
	}
	for _, l := range []struct {
		key     string
		entries []exclude
	}{{keyExclude, s.excludes}, {keyIgnore, s.ignores}} {
		if len(l.entries) > 0 {
			var ex []string
			for _, e := range l.entries {
				ex = append(ex, e.text)
			}
			parts = append(parts, l.key+"="+strings.Join(ex, ","))
		}
	}
	if s.rate > 0 {
		parts = append(parts, keyRate+"="+strconv.FormatFloat(s.rate, 'f', -1, 64)+"%")
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{keyWindow, s.window}, {keySlow, s.slow}, {keyMaxTTL, s.maxTTL}} {
		if d.d > 0 {
			parts = append(parts, d.key+"="+d.d.String())
		}
	}
	if s.minCalls > 0 {
		parts = append(parts, keyMin+"="+strconv.Itoa(s.minCalls))
	}
	if s.key != nil {
		parts = append(parts, keyKey+"="+s.key.text)
	}
	if s.maxKeys > 0 {
		parts = append(parts, keyMaxKeys+"="+strconv.Itoa(s.maxKeys))
	}
	if len(parts) == 0 {
		return "the factory's defaults"
	}
	return strings.Join(parts, " ")
}

// circuit is one circuit name used in the package.
type circuit struct {
	settings
	pos token.Position // of the annotation that declared it first
}
