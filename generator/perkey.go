package generator

// Validate, per-call keys: key= (one circuit per value of an expression
// over the method's parameters) and result= (a function from the method's
// results to the error its circuit counts).

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"
)

// keyPath is key= resolved for one method: a parameter, then the fields
// and methods that lead from it to the key.
type keyPath struct {
	text  string // as written
	param int    // index of the parameter
	steps []keyStep
	conv  bool // the value is of a named string type: string(v)
}

// keyStep is one selector of a key path.
type keyStep struct {
	name   string
	method bool // a call of a niladic method
	check  bool // the value it applies to is a pointer or interface: nil gives the key ""
	// embedded are the embedded fields the selector is promoted through,
	// outermost first; those of pointer or interface type are checked too.
	embedded []embeddedField
}

type embeddedField struct {
	name  string
	check bool
}

// guarded reports whether evaluating the key needs a nil check.
func (kp *keyPath) guarded() bool {
	for _, s := range kp.steps {
		if s.guarded() {
			return true
		}
	}
	return false
}

// guarded reports whether evaluating s needs a nil check.
func (s keyStep) guarded() bool {
	if s.check {
		return true
	}
	for _, e := range s.embedded {
		if e.check {
			return true
		}
	}
	return false
}

// parseKey parses the value of key= into its dotted elements. The
// elements are resolved per method, against its parameters (resolveKey).
func (v *validator) parseKey(a arg) (*keyExpr, bool) {
	const form = "key= takes a parameter or a chain of fields and niladic methods on one, such as key=tenant or key=req.URL.Host"
	it, ok := v.single(a, form)
	if !ok {
		return nil, false
	}
	k := &keyExpr{text: it.text}
	off := 0
	for i, part := range strings.Split(it.text, ".") {
		seg := keySeg{name: part, pos: it.pos + token.Pos(off)}
		off += len(part) + 1
		if name, call := strings.CutSuffix(part, "()"); call {
			seg.name, seg.call = name, true
		}
		switch {
		case !token.IsIdentifier(seg.name) || seg.name == "_":
			v.errorf(seg.pos, "bad value for key: %q is not a name; %s", part, form)
			ok = false
		case i == 0 && seg.call:
			v.errorf(seg.pos, "bad value for key: %q is a call; the key starts with a parameter: %s", part, form)
			ok = false
		}
		k.segs = append(k.segs, seg)
	}
	return k, ok
}

// single returns the one entry of a, whose key takes a single value,
// reporting a list or an empty value; form says what the key takes.
func (v *validator) single(a arg, form string) (item, bool) {
	if len(a.items) > 1 {
		v.errorf(a.items[1].pos-1, "bad value for %s: %q is a list; %s", a.key, a.value, form)
		return item{}, false
	}
	it := a.items[0]
	if it.text == "" {
		v.errorf(it.pos, "bad value for %s: empty; %s", a.key, form)
		return item{}, false
	}
	return it, true
}

// resolveKey resolves k for the method fn of signature sig. inherited
// says that k comes from the interface's annotation, for the hint.
func (v *validator) resolveKey(k *keyExpr, fn *types.Func, sig *types.Signature, inherited bool) (*keyPath, bool) {
	hint := ""
	if inherited {
		hint = fmt.Sprintf("; key= of the interface applies to every guarded method: give %s a //purgatory:circuit with a key= over its own parameters, write key= on the methods it fits instead, or mark %s //purgatory:skip", fn.Name(), fn.Name())
	}
	root := k.segs[0]
	kp := &keyPath{text: k.text, param: -1}
	var params []string
	for i := range sig.Params().Len() {
		p := sig.Params().At(i)
		params = append(params, p.Name())
		if p.Name() == root.name && kp.param < 0 {
			kp.param = i
		}
	}
	if kp.param < 0 {
		msg := fmt.Sprintf("key %s: method %s has no parameter %s", k.text, fn.Name(), root.name)
		if s := suggest(root.name, params); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		v.errs = append(v.errs, errorf(v.fset, v.dir, root.pos, "%s%s", msg, hint))
		return nil, false
	}
	t := sig.Params().At(kp.param).Type()
	addressable := true // a parameter is a variable
	where := root.name  // the expression so far, for the messages
	local := v.l.pkg.Types
	qual := nameQualifier(local)
	for _, seg := range k.segs[1:] {
		if _, ok := types.Unalias(t).(*types.TypeParam); ok {
			v.errorf(seg.pos, "key %s: %s is of type parameter type %s, whose fields and methods key= cannot reach; key on a string parameter", k.text, where, types.TypeString(t, qual))
			return nil, false
		}
		obj, index, indirect := types.LookupFieldOrMethod(t, addressable, local, seg.name)
		if obj == nil {
			msg := fmt.Sprintf("key %s: %s (of type %s) has no field or method %s", k.text, where, types.TypeString(t, qual), seg.name)
			switch {
			case index != nil:
				msg = fmt.Sprintf("key %s: %s is ambiguous in %s (of type %s)", k.text, seg.name, where, types.TypeString(t, qual))
			case indirect:
				msg = fmt.Sprintf("key %s: method %s has a pointer receiver, and %s is not addressable (a method's result)", k.text, seg.name, where)
			default:
				if s := suggest(seg.name, selectorNames(t, local)); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, seg.pos, "%s%s", msg, hint))
			return nil, false
		}
		st := keyStep{name: seg.name, check: nilable(t)}
		// The embedded fields the selector is promoted through.
		cur := t
		for _, i := range index[:len(index)-1] {
			s, _ := derefStruct(cur)
			if s == nil {
				break
			}
			f := s.Field(i)
			ef := embeddedField{name: f.Name(), check: nilable(f.Type())}
			if ef.check && !f.Exported() && f.Pkg() != local {
				v.errorf(seg.pos, "key %s: %s is promoted through the unexported embedded field %s of %s, which may be nil and which generated code cannot check; key on an exported field or method", k.text, seg.name, f.Name(), f.Pkg().Path())
				return nil, false
			}
			st.embedded = append(st.embedded, ef)
			cur = f.Type()
		}
		switch obj := obj.(type) {
		case *types.Var:
			if seg.call {
				v.errorf(seg.pos, "key %s: %s is a field, not a method: write it without ()", k.text, seg.name)
				return nil, false
			}
			t = obj.Type()
			addressable = addressable || indirect
		case *types.Func:
			ms := obj.Type().(*types.Signature)
			if ms.Params().Len() != 0 || ms.Results().Len() != 1 {
				v.errorf(seg.pos, "key %s: method %s has type %s; key= calls only methods with no arguments and one result", k.text, seg.name, types.TypeString(ms, qual))
				return nil, false
			}
			st.method = true
			t = ms.Results().At(0).Type()
			addressable = false
		}
		kp.steps = append(kp.steps, st)
		where += "." + seg.name
		if st.method {
			where += "()"
		}
	}
	// The key itself: a string, a named string type, or a fmt.Stringer.
	if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsString != 0 {
		kp.conv = !types.Identical(t, types.Typ[types.String])
		return kp, true
	}
	if _, ok := types.Unalias(t).(*types.TypeParam); !ok {
		obj, _, _ := types.LookupFieldOrMethod(t, addressable, local, "String")
		if fn, ok := obj.(*types.Func); ok {
			ms := fn.Type().(*types.Signature)
			if ms.Params().Len() == 0 && ms.Results().Len() == 1 && types.Identical(ms.Results().At(0).Type(), types.Typ[types.String]) {
				kp.steps = append(kp.steps, keyStep{name: "String", method: true, check: nilable(t)})
				return kp, true
			}
		}
	}
	last := k.segs[len(k.segs)-1]
	v.errorf(last.pos, "key %s: %s is of type %s; a key is a string, a named string type or a fmt.Stringer: key on a field or method that gives one%s",
		k.text, where, types.TypeString(t, qual), hint)
	return nil, false
}

// nilable reports whether a value of type t may be nil in a way that
// selecting a field or calling a method on it panics: a pointer or an
// interface.
func nilable(t types.Type) bool {
	switch t.Underlying().(type) {
	case *types.Pointer, *types.Interface:
		return true
	}
	return false
}

// derefStruct returns the struct type of t or of what t points to.
func derefStruct(t types.Type) (*types.Struct, bool) {
	u := t.Underlying()
	if p, ok := u.(*types.Pointer); ok {
		u = p.Elem().Underlying()
	}
	s, ok := u.(*types.Struct)
	return s, ok
}

// selectorNames returns the field and method names a value of type t
// offers to code of package local, for suggestions.
func selectorNames(t types.Type, local *types.Package) []string {
	var out []string
	ms := types.NewMethodSet(types.NewPointer(t))
	if _, ok := t.Underlying().(*types.Interface); ok {
		ms = types.NewMethodSet(t)
	}
	for sel := range ms.Methods() {
		if o := sel.Obj(); o.Exported() || o.Pkg() == local {
			out = append(out, o.Name())
		}
	}
	if s, ok := derefStruct(t); ok {
		for f := range s.Fields() {
			if f.Exported() || f.Pkg() == local {
				out = append(out, f.Name())
			}
		}
	}
	return out
}

// resolveResult resolves the value of result=: a function, or variable of
// function type, declared at package level, whose single result is error.
// It is checked against each method's results by checkResult.
func (v *validator) resolveResult(a arg, scope *types.Scope) (*resultFunc, bool) {
	const form = "result= names a function from the method's results to the error its circuit counts, such as result=httpcircuit.Classify"
	it, ok := v.single(a, form)
	if !ok {
		return nil, false
	}
	obj := v.lookup(keyResult, it, it.text, scope, "functions")
	if obj == nil {
		return nil, false
	}
	qual := nameQualifier(v.l.pkg.Types)
	r := &resultFunc{obj: obj, text: it.text, pos: it.pos, local: obj.Pkg() != nil && obj.Pkg().Path() == v.l.pkg.PkgPath}
	switch obj.(type) {
	case *types.Func, *types.Var: // package-level: lookup searches no local scope
	default:
		v.errorf(it.pos, "result %s: %s is %s, not a function; %s", it.text, it.text, objectKind(obj), form)
		return nil, false
	}
	sig, ok := obj.Type().Underlying().(*types.Signature)
	if !ok {
		v.errorf(it.pos, "result %s: variable of type %s is not a function; %s", it.text, types.TypeString(obj.Type(), qual), form)
		return nil, false
	}
	switch {
	case sig.TypeParams().Len() > 0:
		v.errorf(it.pos, "result %s: generic function %s needs type arguments; declare a function of the method's result types that calls it", it.text, obj.Name())
		return nil, false
	case sig.Variadic():
		v.errorf(it.pos, "result %s: %s is variadic; declare a function that takes exactly the method's results", it.text, obj.Name())
		return nil, false
	case sig.Results().Len() != 1 || !types.Identical(sig.Results().At(0).Type(), errorType):
		msg := fmt.Sprintf("result %s: %s has type %s; it must return exactly one error", it.text, obj.Name(), types.TypeString(sig, qual))
		if sig.Results().Len() == 1 && types.Implements(sig.Results().At(0).Type(), errorIface) {
			msg += " (a nil " + types.TypeString(sig.Results().At(0).Type(), qual) + " would reach the breaker as a non-nil error): declare its result as error"
		}
		v.errs = append(v.errs, errorf(v.fset, v.dir, it.pos, "%s", msg))
		return nil, false
	}
	r.sig = sig
	return r, true
}

// objectKind names the kind of obj for messages.
func objectKind(obj types.Object) string {
	switch obj.(type) {
	case *types.PkgName:
		return "a package"
	case *types.TypeName:
		return "a type"
	case *types.Const:
		return "a constant"
	case *types.Builtin:
		return "a builtin"
	case *types.Nil:
		return "nil"
	}
	return "not a function"
}

// checkResult checks that r takes the results of method fn (each result
// assignable to the parameter at its place).
func (v *validator) checkResult(r *resultFunc, fn *types.Func, sig *types.Signature, inherited bool) bool {
	res := sig.Results()
	fits := r.sig.Params().Len() == res.Len()
	for i := 0; fits && i < res.Len(); i++ {
		fits = assignable(res.At(i).Type(), r.sig.Params().At(i).Type())
	}
	if fits {
		return true
	}
	qual := nameQualifier(v.l.pkg.Types)
	msg := fmt.Sprintf("result %s: %s takes %s, which does not fit the results %s of method %s; result= takes a function of the method's results, such as func%s error",
		r.text, r.obj.Name(), tupleString(r.sig.Params(), qual), tupleString(res, qual), fn.Name(), tupleString(res, qual))
	if inherited {
		msg += fmt.Sprintf("; result= of the interface applies to every guarded method: write it on the methods it fits instead, or mark %s //purgatory:skip", fn.Name())
	}
	v.errs = append(v.errs, errorf(v.fset, v.dir, r.pos, "%s", msg))
	return false
}

// assignable reports whether a value of type from can be passed as to.
// Types of a package loaded apart (an import path entry) are matched by
// their spelling.
func assignable(from, to types.Type) bool {
	if types.AssignableTo(from, to) {
		return true
	}
	full := func(p *types.Package) string { return p.Path() }
	return types.TypeString(from, full) == types.TypeString(to, full)
}

// tupleString writes a parameter or result list as (T1, T2), without names.
func tupleString(t *types.Tuple, qual types.Qualifier) string {
	var parts []string
	for v := range t.Variables() {
		parts = append(parts, types.TypeString(v.Type(), qual))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// statusOf returns the first non-error result of sig that carries a
// status the breaker cannot see without result=: *http.Response, or a
// type with a StatusCode (or Status) field or method of integer type. It
// returns its type, or nil.
func statusOf(sig *types.Signature) types.Type {
	for r := range sig.Results().Variables() {
		t := r.Type()
		if types.Identical(t, errorType) {
			continue
		}
		if hasStatus(t) {
			return t
		}
	}
	return nil
}

func hasStatus(t types.Type) bool {
	for _, name := range []string{"StatusCode", "Status"} {
		obj, _, _ := types.LookupFieldOrMethod(t, true, nil, name)
		var st types.Type
		switch o := obj.(type) {
		case *types.Var:
			st = o.Type()
		case *types.Func:
			ms := o.Type().(*types.Signature)
			if ms.Params().Len() == 0 && ms.Results().Len() == 1 {
				st = ms.Results().At(0).Type()
			}
		}
		if st != nil {
			if b, ok := st.Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 {
				return true
			}
		}
	}
	return false
}

// isHTTPResponse reports whether t is *net/http.Response.
func isHTTPResponse(t types.Type) bool {
	p, ok := types.Unalias(t).(*types.Pointer)
	if !ok {
		return false
	}
	n, ok := types.Unalias(p.Elem()).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "net/http" && n.Obj().Name() == "Response"
}

// warnStatus warns that guarded method fn of the interface declared at ts
// returns st, a result with a status its circuit does not see.
func (v *validator) warnStatus(ts *ast.TypeSpec, fn *types.Func, st types.Type) {
	qual := nameQualifier(v.l.pkg.Types)
	fix := fmt.Sprintf("add result=FUNC, a func%s error that returns the error to count", tupleString(fn.Type().(*types.Signature).Results(), qual))
	if isHTTPResponse(st) {
		fix = "add result=httpcircuit.Classify (5xx, 429 and transport errors fail; no import needed) or a func" +
			tupleString(fn.Type().(*types.Signature).Results(), qual) + " error of your own"
	}
	pos := ts.Name.Pos()
	if fn.Pos() >= ts.Pos() && fn.Pos() < ts.End() {
		pos = fn.Pos() // declared here, not embedded
	}
	v.warnf(pos, "%s.%s returns %s, whose status its circuit does not see: an error answer with a nil error counts as a success; %s",
		ts.Name.Name, fn.Name(), types.TypeString(st, qual), fix)
}

// nameQualifier writes types of other packages with their package names
// (*http.Response), those of local unqualified.
func nameQualifier(local *types.Package) types.Qualifier {
	return func(p *types.Package) string {
		if p.Path() == local.Path() {
			return ""
		}
		return p.Name()
	}
}
