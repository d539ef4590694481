package generator

// Validate, exclude entries: resolve each with go/types in the file that declares the interface.

import (
	"fmt"
	"go/token"
	"go/types"
	"strings"
)

// resolveExclude resolves one exclude entry in the scope of the file that
// declares the interface.
func (v *validator) resolveExclude(it item, scope *types.Scope) (exclude, bool) {
	text := it.text
	e := exclude{text: text}
	if text == "" {
		v.errorf(it.pos, "bad value for exclude: empty entry")
		return e, false
	}
	if strings.HasPrefix(text, "*") {
		e.ptr = true
		text = text[1:]
	}
	var obj types.Object
	if q, name, ok := strings.Cut(text, "."); ok {
		pn, _ := scope.Lookup(q).(*types.PkgName)
		if pn == nil {
			msg := fmt.Sprintf("exclude %s: undefined: %s", it.text, q)
			if s := suggest(q, importNames(scope)); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, it.pos, "%s", msg))
			return e, false
		}
		obj = pn.Imported().Scope().Lookup(name)
		if obj == nil || !obj.Exported() {
			msg := fmt.Sprintf("exclude %s: undefined: %s.%s", it.text, q, name)
			if s := suggest(name, exportedNames(pn.Imported().Scope())); s != "" {
				msg += fmt.Sprintf(" (did you mean %s.%s?)", q, s)
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, it.pos, "%s", msg))
			return e, false
		}
	} else {
		_, obj = scope.LookupParent(text, token.NoPos)
		if obj == nil {
			msg := fmt.Sprintf("exclude %s: undefined: %s", it.text, text)
			if s := suggest(text, v.l.pkg.Types.Scope().Names()); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			} else {
				msg += "; exclude names error variables, error types and func(error) bool predicates declared in this package or in a package this file imports"
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, it.pos, "%s", msg))
			return e, false
		}
	}
	e.pkg, e.name = obj.Pkg(), obj.Name()
	want := "an error variable, an error type or a func(error) bool"
	if _, ok := obj.(*types.PkgName); ok {
		v.errorf(it.pos, "exclude %s: %s is a package, not %s", it.text, text, want)
		return e, false
	}
	if obj.Pkg() != nil && obj.Parent() != obj.Pkg().Scope() {
		v.errorf(it.pos, "exclude %s: not a package-level declaration", it.text)
		return e, false
	}
	switch obj := obj.(type) {
	case *types.TypeName:
		t := obj.Type()
		if n, ok := t.(*types.Named); ok && n.TypeParams().Len() > 0 {
			v.errorf(it.pos, "exclude %s: generic type %s needs type arguments; use a func(error) bool instead", it.text, obj.Name())
			return e, false
		}
		if _, ok := t.Underlying().(*types.Interface); ok && !e.ptr {
			if types.Implements(t, errorType.Underlying().(*types.Interface)) {
				e.kind = exType
				return e, true
			}
		}
		if e.ptr {
			t = types.NewPointer(t)
		}
		if !types.Implements(t, errorType.Underlying().(*types.Interface)) {
			hint := ""
			if !e.ptr && types.Implements(types.NewPointer(t), errorType.Underlying().(*types.Interface)) {
				hint = fmt.Sprintf(" (did you mean *%s?)", text)
			}
			v.errorf(it.pos, "exclude %s: type %s does not implement error%s", it.text, it.text, hint)
			return e, false
		}
		e.kind = exType
		return e, true
	case *types.Var:
		if e.ptr {
			v.errorf(it.pos, "exclude %s: %s is a variable, not a type", it.text, text)
			return e, false
		}
		if isPredicate(obj.Type()) {
			e.kind = exPred
			return e, true
		}
		if !types.Implements(obj.Type(), errorType.Underlying().(*types.Interface)) {
			v.errorf(it.pos, "exclude %s: variable of type %s is not an error", it.text, types.TypeString(obj.Type(), types.RelativeTo(v.l.pkg.Types)))
			return e, false
		}
		e.kind = exVar
		return e, true
	case *types.Func:
		if e.ptr || !isPredicate(obj.Type()) {
			v.errorf(it.pos, "exclude %s: func %s has type %s, not func(error) bool", it.text, text, types.TypeString(obj.Type(), types.RelativeTo(v.l.pkg.Types)))
			return e, false
		}
		e.kind = exPred
		return e, true
	case *types.Const:
		v.errorf(it.pos, "exclude %s: %s is a constant, not %s", it.text, text, want)
	default:
		v.errorf(it.pos, "exclude %s: %s is not %s", it.text, text, want)
	}
	return e, false
}

// isPredicate reports whether t is func(error) bool.
func isPredicate(t types.Type) bool {
	sig, ok := t.Underlying().(*types.Signature)
	return ok && sig.TypeParams().Len() == 0 && !sig.Variadic() &&
		sig.Params().Len() == 1 && types.Identical(sig.Params().At(0).Type(), errorType) &&
		sig.Results().Len() == 1 && types.Identical(sig.Results().At(0).Type(), types.Typ[types.Bool])
}

// importNames returns the package names a file scope declares.
func importNames(scope *types.Scope) []string {
	var out []string
	for _, n := range scope.Names() {
		if _, ok := scope.Lookup(n).(*types.PkgName); ok {
			out = append(out, n)
		}
	}
	return out
}

// exportedNames returns the exported names of a package scope.
func exportedNames(scope *types.Scope) []string {
	var out []string
	for _, n := range scope.Names() {
		if token.IsExported(n) {
			out = append(out, n)
		}
	}
	return out
}
