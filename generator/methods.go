package generator

import (
	"fmt"
	"go/ast"
	"go/types"
	"sort"
	"strings"
)

// Validate, per method: why a method is forwarded or guarded, where its
// context comes from, whether the generated code can name its types.

// reportUnguarded reports an interface of which no method is guarded (an
// error: the wrapper would only forward), and warns about the methods that
// are forwarded only because they have no error result.
func (v *validator) reportUnguarded(ts *ast.TypeSpec, d *directive, im *ifaceModel) {
	// The forwarded methods by reason, in the order of the reasons.
	byReason := map[forwardReason][]string{}
	for _, mm := range im.methods {
		if mm.circuit == nil {
			byReason[mm.forward] = append(byReason[mm.forward], mm.fn.Name())
		}
	}
	why := func(reasons ...forwardReason) (string, int) {
		var parts []string
		n := 0
		for _, r := range reasons {
			if names := byReason[r]; len(names) > 0 {
				parts = append(parts, fmt.Sprintf("%s (%s)", summary(names, 6), forwardNote(r)))
				n += len(names)
			}
		}
		return strings.Join(parts, "; "), n
	}
	if len(im.circuits) == 0 {
		msg := "it has no methods"
		if len(im.methods) > 0 {
			msg, _ = why(forwardNoError, forwardConcreteError, forwardClose, forwardSkip, forwardSkipKey)
		}
		v.errorf(d.pos, "no method of %s goes through a breaker: %s; the wrapper would only forward calls: remove //purgatory:circuit", im.name(), msg)
		return
	}
	if msg, n := why(forwardNoError, forwardConcreteError); n > 0 {
		// Close, forwarded by design, is left out of the counts.
		total, aside := len(im.methods), ""
		if c := len(byReason[forwardClose]); c > 0 {
			total -= c
			aside = " (Close aside)"
		}
		verb, them := "are", "them"
		if n == 1 {
			verb, them = "is", "it"
		}
		head := fmt.Sprintf("%d of %d methods%s %s forwarded without a breaker", n, total, aside, verb)
		if 2*n > total {
			head = fmt.Sprintf("most methods are forwarded without a breaker, also while the circuit is open (%d of %d methods%s)", n, total, strings.Replace(aside, " (Close aside)", ", Close aside", 1))
		}
		fix := fmt.Sprintf("list %s in skip= to silence this warning", them)
		if carriers := errorCarriers(im); len(carriers) > 0 {
			fix = fmt.Sprintf("%s return an error inside their result (%s), which a wrapper cannot return a rejection in: to guard them, declare an interface whose methods return (T, error), implemented by an adapter, and annotate it (result= classifies what they return); or %s",
				summary(carriers, 3), errorCarrierNote, fix)
		}
		v.warnf(ts.Name.Pos(), "%s: %s: %s; %s", im.name(), head, msg, fix)
	}
}

// errorCarrierNote says what errorCarriers looks for.
const errorCarrierNote = "an Err() or Error() method returning error"

// errorCarriers returns the methods of im forwarded for want of an error
// result whose results carry an error (mongo's *SingleResult.Err(),
// rueidis's RedisResult.Error()).
func errorCarriers(im *ifaceModel) []string {
	var out []string
	for _, mm := range im.methods {
		if mm.forward != forwardNoError {
			continue
		}
		for r := range mm.sig.Results().Variables() {
			if carriesError(r.Type()) {
				out = append(out, mm.fn.Name())
				break
			}
		}
	}
	return out
}

// carriesError reports whether t has a niladic Err or Error method that
// returns error.
func carriesError(t types.Type) bool {
	for _, name := range []string{"Err", "Error"} {
		obj, _, _ := types.LookupFieldOrMethod(t, true, nil, name)
		if fn, ok := obj.(*types.Func); ok {
			ms := fn.Type().(*types.Signature)
			if ms.Params().Len() == 0 && ms.Results().Len() == 1 && types.Identical(ms.Results().At(0).Type(), errorType) {
				return true
			}
		}
	}
	return false
}

// summary joins up to n names, and says how many more there are.
func summary(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// methodOrder returns the methods of it: the explicit ones in source
// order, then the embedded ones by name.
func methodOrder(ts *ast.TypeSpec, it *types.Interface) []*types.Func {
	var order []*types.Func
	seen := map[string]bool{}
	if itAST, ok := ts.Type.(*ast.InterfaceType); ok {
		for _, field := range itAST.Methods.List {
			if len(field.Names) == 0 {
				continue
			}
			if i, fn := lookupMethod(it, field.Names[0].Name); i >= 0 {
				order = append(order, fn)
				seen[fn.Name()] = true
			}
		}
	}
	var rest []*types.Func
	for i := range it.NumMethods() {
		if fn := it.Method(i); !seen[fn.Name()] {
			rest = append(rest, fn)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Name() < rest[j].Name() })
	return append(order, rest...)
}

// methodNames returns the names of the methods of it.
func methodNames(it *types.Interface) []string {
	var out []string
	for i := range it.NumMethods() {
		out = append(out, it.Method(i).Name())
	}
	return out
}

// isClose reports whether fn is Close() error, which is forwarded unless
// a method annotation says otherwise: a wrapper must never keep an inner
// client from closing.
func isClose(fn *types.Func) bool {
	sig := fn.Type().(*types.Signature)
	return fn.Name() == "Close" && sig.Params().Len() == 0 && sig.Results().Len() == 1 && returnsError(sig)
}

// concreteError reports whether the last result of sig is a type other
// than error that implements error (*MyErr).
func concreteError(sig *types.Signature) bool {
	r := sig.Results()
	return r.Len() > 0 && types.Implements(r.At(r.Len()-1).Type(), errorIface)
}

// contextOf returns where a guarded method of signature sig takes its
// context from: the first context.Context parameter, else the first
// parameter with a Context() context.Context method (*http.Request), else
// none.
func contextOf(sig *types.Signature) ctxSource {
	for i := range sig.Params().Len() {
		if isContext(sig.Params().At(i).Type()) {
			return ctxSource{param: i}
		}
	}
	for i := range sig.Params().Len() {
		p := sig.Params().At(i)
		if sig.Variadic() && i == sig.Params().Len()-1 {
			break
		}
		obj, _, _ := types.LookupFieldOrMethod(p.Type(), true, p.Pkg(), "Context")
		fn, ok := obj.(*types.Func)
		if !ok {
			continue
		}
		ms := fn.Type().(*types.Signature)
		if ms.Params().Len() == 0 && ms.Results().Len() == 1 && isContext(ms.Results().At(0).Type()) {
			switch types.Unalias(p.Type()).Underlying().(type) {
			case *types.Pointer, *types.Interface:
				return ctxSource{param: i, method: true, nilable: true}
			}
			return ctxSource{param: i, method: true}
		}
	}
	return ctxSource{param: -1}
}

// isContext reports whether t is context.Context.
func isContext(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	o := n.Obj()
	return o.Pkg() != nil && o.Pkg().Path() == "context" && o.Name() == "Context"
}

// lookupMethod finds the method called name in it.
func lookupMethod(it *types.Interface, name string) (int, *types.Func) {
	for i := range it.NumMethods() {
		if fn := it.Method(i); fn.Name() == name {
			return i, fn
		}
	}
	return -1, nil
}

// returnsError reports whether the last result of sig is error.
func returnsError(sig *types.Signature) bool {
	r := sig.Results()
	return r.Len() > 0 && types.Identical(r.At(r.Len()-1).Type(), errorType)
}

var (
	errorType  = types.Universe.Lookup("error").Type()
	errorIface = errorType.Underlying().(*types.Interface)
)

// unreachableIn describes the first type in sig that code outside its
// package cannot name (unexported, or in an internal package that local
// cannot import), or returns "".
func unreachableIn(sig *types.Signature, local *types.Package) string {
	found := ""
	foreign := func(pkg *types.Package) bool { return pkg != nil && pkg != local }
	walkTypes(sig, func(t types.Type) bool {
		if found != "" {
			return false
		}
		switch t := t.(type) {
		case *types.Struct:
			for f := range t.Fields() {
				if !f.Exported() && foreign(f.Pkg()) {
					found = "an unexported struct field of " + f.Pkg().Path() + ", which is not exported by its package"
					return false
				}
			}
		case *types.Interface:
			for m := range t.ExplicitMethods() {
				if !m.Exported() && foreign(m.Pkg()) {
					found = "an unexported method of " + m.Pkg().Path() + ", which is not exported by its package"
					return false
				}
			}
		}
		obj := typeName(t)
		if obj == nil || !foreign(obj.Pkg()) {
			return true
		}
		switch {
		case !obj.Exported():
			found = obj.Pkg().Path() + "." + obj.Name() + ", which is not exported by its package"
		case !canImport(local.Path(), importPath(obj.Pkg().Path())):
			found = fmt.Sprintf("%s.%s, from an internal package that %s cannot import; declare the method in %s with a type it can name",
				obj.Pkg().Path(), obj.Name(), local.Path(), local.Name())
		}
		return found == ""
	})
	return found
}

// canImport reports whether package from may import package path under
// the go command's rule for internal packages: a path with an internal
// element is importable only from the tree rooted at that element's
// parent (the standard library's own internal packages only from it).
func canImport(from, path string) bool {
	i := -1
	switch {
	case strings.HasSuffix(path, "/internal"):
		i = len(path) - len("internal")
	case strings.Contains(path, "/internal/"):
		i = strings.LastIndex(path, "/internal/") + 1
	case path == "internal" || strings.HasPrefix(path, "internal/"):
		i = 0
	}
	if i < 0 {
		return true
	}
	if i == 0 {
		first, _, _ := strings.Cut(from, "/")
		return !strings.Contains(first, ".") // the standard library
	}
	parent := path[:i] // with its trailing slash
	return strings.HasPrefix(from+"/", parent)
}
