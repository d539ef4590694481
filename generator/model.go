package generator

// The model: what the validate step builds and the emit step reads.

import (
	"go/token"
	"go/types"
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
}

// ifaceModel is one annotated interface.
type ifaceModel struct {
	obj      *types.TypeName
	methods  []*methodModel
	circuits []*circuit // distinct circuits its methods use, in first-use order
}

// name returns the interface's name.
func (m *ifaceModel) name() string { return m.obj.Name() }

// typeParams returns the interface's type parameters, if it is generic.
func (m *ifaceModel) typeParams() *types.TypeParamList {
	if n, ok := types.Unalias(m.obj.Type()).(*types.Named); ok && m.obj.Type() == n {
		return n.TypeParams()
	}
	return nil
}

// methodModel is one method of the wrapper.
type methodModel struct {
	fn      *types.Func
	sig     *types.Signature
	circuit *circuit // nil when forwarded
	skipped bool     // forwarded because of //purgatory:skip (else: no error result)
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

// settings are what a //purgatory:circuit annotation configures. Zero
// numbers leave the factory's default.
type settings struct {
	name      string
	threshold int
	ttl       time.Duration
	trials    int
	excludes  []exclude
}

// equal reports whether a and b configure the same breaker.
func (s *settings) equal(o *settings) bool {
	if s.name != o.name || s.threshold != o.threshold || s.ttl != o.ttl || s.trials != o.trials {
		return false
	}
	return slices.Equal(s.excludeKeys(), o.excludeKeys())
}

func (s *settings) excludeKeys() []string {
	var ks []string
	for _, e := range s.excludes {
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
	if len(s.excludes) > 0 {
		var ex []string
		for _, e := range s.excludes {
			ex = append(ex, e.text)
		}
		parts = append(parts, keyExclude+"="+strings.Join(ex, ","))
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
