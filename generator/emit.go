package generator

import (
	"bytes"
	"fmt"
	"go/token"
	"go/types"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dave/jennifer/jen"
)

// emitter writes the file of one package.
type emitter struct {
	m       *model
	f       *jen.File
	imports map[string]string // package path → name in the generated file
	// fileNames are the names the file scope and the universe give meaning
	// to in the generated code: parameters and locals must not shadow them.
	fileNames map[string]bool
}

// emit renders the model's file.
func emit(m *model) ([]byte, error) {
	e := &emitter{m: m, imports: map[string]string{}, fileNames: map[string]bool{}}
	e.f = jen.NewFilePathName(m.pkg.Path(), m.pkg.Name())
	e.f.HeaderComment(header)
	e.planImports()
	for _, im := range m.ifaces {
		e.iface(im)
	}
	var buf bytes.Buffer
	if err := e.f.Render(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// planImports names every package the file refers to, so that no two
// share a name and none clashes with a package-scope name or a type
// parameter, and tells jennifer.
func (e *emitter) planImports() {
	pkgs := map[string]*types.Package{}
	usesTime, usesContext := false, false
	for _, im := range e.m.ifaces {
		if tps := im.typeParams(); tps != nil {
			for tp := range tps.TypeParams() {
				collectPkgs(tp.Constraint(), pkgs)
			}
		}
		for _, mm := range im.methods {
			collectPkgs(mm.sig, pkgs)
			if mm.circuit != nil && ctxParam(mm.sig) < 0 {
				usesContext = true
			}
		}
		for _, c := range im.circuits {
			if c.ttl > 0 {
				usesTime = true
			}
			for _, x := range c.excludes {
				if x.pkg != nil {
					pkgs[importPath(x.pkg.Path())] = x.pkg
				}
			}
		}
	}
	delete(pkgs, e.m.pkg.Path())
	reserved := map[string]bool{}
	for n := range e.m.taken {
		reserved[n] = true
	}
	for _, n := range types.Universe.Names() {
		reserved[n] = true
	}
	for _, im := range e.m.ifaces {
		w, ctor := wrapperNames(im.name())
		reserved[w] = true
		reserved[ctor] = true
		if tps := im.typeParams(); tps != nil {
			for tp := range tps.TypeParams() {
				reserved[tp.Obj().Name()] = true
			}
		}
	}
	taken := map[string]bool{}
	claim := func(p, name string) {
		cand := name
		if reserved[cand] || taken[cand] || token.IsKeyword(cand) {
			if p == RuntimePath {
				cand = "purgatoryrt"
			} else if parent := sanitize(path.Base(path.Dir(p))); parent != "" && parent != name {
				cand = parent + name
			}
		}
		for i := 2; reserved[cand] || taken[cand] || token.IsKeyword(cand); i++ {
			cand = name + strconv.Itoa(i)
		}
		taken[cand] = true
		e.imports[p] = cand
	}
	claim(RuntimePath, "purgatory")
	if usesContext {
		claim("context", "context")
	}
	if usesTime {
		claim("time", "time")
	}
	paths := make([]string, 0, len(pkgs))
	for p := range pkgs {
		if _, done := e.imports[p]; !done {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		claim(p, pkgs[p].Name())
	}
	for p, name := range e.imports {
		real := map[string]string{RuntimePath: "runtime", "context": "context", "time": "time"}[p]
		if pk := pkgs[p]; pk != nil {
			real = pk.Name()
		}
		if name == real && name == guessName(p) {
			e.f.ImportName(p, name)
		} else {
			e.f.ImportAlias(p, name)
		}
		e.fileNames[name] = true
	}
	for _, n := range types.Universe.Names() {
		e.fileNames[n] = true
	}
}

// guessName is the package name a reader would guess from an import path:
// its last element. Other packages get an explicit import name.
func guessName(p string) string { return path.Base(p) }

// importPath returns the path code imports package path p by: a package
// found in a vendor directory (GOPATH mode) is imported without the
// vendor prefix, as mockgen and moq learnt to do.
func importPath(p string) string {
	if i := strings.LastIndex(p, "/vendor/"); i >= 0 {
		return p[i+len("/vendor/"):]
	}
	return strings.TrimPrefix(p, "vendor/")
}

// sanitize keeps the letters and digits of s, lower-cased.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	out := b.String()
	if out != "" && unicode.IsDigit(rune(out[0])) {
		return ""
	}
	return out
}

// collectPkgs adds the packages of the named types in t.
func collectPkgs(t types.Type, pkgs map[string]*types.Package) {
	walkTypes(t, func(t types.Type) bool {
		var obj *types.TypeName
		switch t := t.(type) {
		case *types.Named:
			obj = t.Obj()
		case *types.Alias:
			obj = t.Obj()
		case *types.Basic:
			if t.Kind() == types.UnsafePointer {
				pkgs["unsafe"] = types.Unsafe
			}
		}
		if obj != nil && obj.Pkg() != nil {
			pkgs[importPath(obj.Pkg().Path())] = obj.Pkg()
		}
		return true
	})
}

// walkTypes calls fn for t and every type it is written with, once each,
// outside in; it does not descend into a type for which fn returns false.
func walkTypes(t types.Type, fn func(types.Type) bool) {
	seen := map[types.Type]bool{}
	var walk func(t types.Type)
	walk = func(t types.Type) {
		if t == nil || seen[t] {
			return
		}
		seen[t] = true
		if !fn(t) {
			return
		}
		switch t := t.(type) {
		case *types.Named:
			for a := range t.TypeArgs().Types() {
				walk(a)
			}
		case *types.Alias:
			for a := range t.TypeArgs().Types() {
				walk(a)
			}
		case *types.Pointer:
			walk(t.Elem())
		case *types.Slice:
			walk(t.Elem())
		case *types.Array:
			walk(t.Elem())
		case *types.Map:
			walk(t.Key())
			walk(t.Elem())
		case *types.Chan:
			walk(t.Elem())
		case *types.Signature:
			for p := range t.Params().Variables() {
				walk(p.Type())
			}
			for p := range t.Results().Variables() {
				walk(p.Type())
			}
		case *types.Struct:
			for f := range t.Fields() {
				walk(f.Type())
			}
		case *types.Interface:
			for m := range t.ExplicitMethods() {
				walk(m.Type())
			}
			for x := range t.EmbeddedTypes() {
				walk(x)
			}
		case *types.Union:
			for i := range t.Len() {
				walk(t.Term(i).Type())
			}
		}
	}
	walk(t)
}

// typ returns the code for t as the generated file spells it.
func (e *emitter) typ(t types.Type) *jen.Statement {
	switch t := t.(type) {
	case *types.Basic:
		if t.Kind() == types.UnsafePointer {
			return jen.Qual("unsafe", "Pointer")
		}
		return jen.Id(t.Name())
	case *types.Named:
		return e.named(t.Obj(), t.TypeArgs())
	case *types.Alias:
		return e.named(t.Obj(), t.TypeArgs())
	case *types.TypeParam:
		return jen.Id(t.Obj().Name())
	case *types.Pointer:
		return jen.Op("*").Add(e.typ(t.Elem()))
	case *types.Slice:
		return jen.Index().Add(e.typ(t.Elem()))
	case *types.Array:
		return jen.Index(jen.Lit(int(t.Len()))).Add(e.typ(t.Elem()))
	case *types.Map:
		return jen.Map(e.typ(t.Key())).Add(e.typ(t.Elem()))
	case *types.Chan:
		elem := e.typ(t.Elem())
		switch t.Dir() {
		case types.SendOnly:
			return jen.Chan().Op("<-").Add(elem)
		case types.RecvOnly:
			return jen.Op("<-").Chan().Add(elem)
		}
		if c, ok := t.Elem().(*types.Chan); ok && c.Dir() == types.RecvOnly {
			return jen.Chan().Parens(elem)
		}
		return jen.Chan().Add(elem)
	case *types.Signature:
		return jen.Func().Add(e.signature(t, nil))
	case *types.Struct:
		var fields []jen.Code
		for i := range t.NumFields() {
			f := t.Field(i)
			var s *jen.Statement
			if f.Embedded() {
				s = e.typ(f.Type())
			} else {
				s = jen.Id(f.Name()).Add(e.typ(f.Type()))
			}
			if tag := t.Tag(i); tag != "" {
				if strings.Contains(tag, "`") {
					s = s.Op(strconv.Quote(tag))
				} else {
					s = s.Op("`" + tag + "`")
				}
			}
			fields = append(fields, s)
		}
		return jen.Struct(fields...)
	case *types.Interface:
		if t.IsImplicit() && t.NumEmbeddeds() == 1 {
			return e.typ(t.EmbeddedType(0))
		}
		var items []jen.Code
		for i := range t.NumEmbeddeds() {
			items = append(items, e.typ(t.EmbeddedType(i)))
		}
		for i := range t.NumExplicitMethods() {
			m := t.ExplicitMethod(i)
			items = append(items, jen.Id(m.Name()).Add(e.signature(m.Type().(*types.Signature), nil)))
		}
		return jen.Interface(items...)
	case *types.Union:
		var terms []jen.Code
		for i := range t.Len() {
			term := t.Term(i)
			if term.Tilde() {
				terms = append(terms, jen.Op("~").Add(e.typ(term.Type())))
			} else {
				terms = append(terms, e.typ(term.Type()))
			}
		}
		return jen.Union(terms...)
	}
	panic(fmt.Sprintf("purgatorygen: unexpected type %T (%v)", t, t))
}

// named returns the code for a (possibly instantiated) named type or alias.
func (e *emitter) named(obj *types.TypeName, args *types.TypeList) *jen.Statement {
	var s *jen.Statement
	switch {
	case obj.Pkg() == nil || obj.Pkg() == e.m.pkg:
		s = jen.Id(obj.Name())
	default:
		s = jen.Qual(importPath(obj.Pkg().Path()), obj.Name())
	}
	if args.Len() > 0 {
		var codes []jen.Code
		for a := range args.Types() {
			codes = append(codes, e.typ(a))
		}
		s = s.Types(codes...)
	}
	return s
}

// signature returns the parameter and result lists of sig; names, when
// given, names the parameters.
func (e *emitter) signature(sig *types.Signature, names []string) *jen.Statement {
	var params []jen.Code
	for i := range sig.Params().Len() {
		p := sig.Params().At(i)
		var s *jen.Statement
		if names != nil {
			s = jen.Id(names[i])
		} else {
			s = jen.Null()
		}
		if sig.Variadic() && i == sig.Params().Len()-1 {
			s = s.Op("...").Add(e.typ(p.Type().(*types.Slice).Elem()))
		} else {
			s = s.Add(e.typ(p.Type()))
		}
		params = append(params, s)
	}
	out := jen.Params(params...)
	res := sig.Results()
	switch res.Len() {
	case 0:
	case 1:
		out = out.Add(e.typ(res.At(0).Type()))
	default:
		var rs []jen.Code
		for r := range res.Variables() {
			rs = append(rs, e.typ(r.Type()))
		}
		out = out.Params(rs...)
	}
	return out
}

// ctxParam returns the index of the first parameter when it is a
// context.Context, or -1.
func ctxParam(sig *types.Signature) int {
	if sig.Params().Len() == 0 {
		return -1
	}
	if n, ok := types.Unalias(sig.Params().At(0).Type()).(*types.Named); ok {
		if o := n.Obj(); o.Pkg() != nil && o.Pkg().Path() == "context" && o.Name() == "Context" {
			return 0
		}
	}
	return -1
}

// namer hands out identifiers that are not taken.
type namer map[string]bool

// name returns base, or base with a number appended, whichever is free
// first, and takes it.
func (n namer) name(base string) string {
	cand := base
	for i := 1; n[cand] || token.IsKeyword(cand); i++ {
		cand = base + strconv.Itoa(i)
	}
	n[cand] = true
	return cand
}

// clone returns a copy of n.
func (n namer) clone() namer {
	c := make(namer, len(n))
	for k := range n {
		c[k] = true
	}
	return c
}

// baseNamer returns the names the code of im must not declare: those of the
// file scope and the universe, its type parameters, and the package-scope
// names its signatures use.
func (e *emitter) baseNamer(im *ifaceModel) namer {
	n := namer{}
	for k := range e.fileNames {
		n[k] = true
	}
	if tps := im.typeParams(); tps != nil {
		for tp := range tps.TypeParams() {
			n[tp.Obj().Name()] = true
			walkTypes(tp.Constraint(), func(t types.Type) bool { e.markLocal(n, t); return true })
		}
	}
	n[im.name()] = true
	w, ctor := wrapperNames(im.name())
	n[w] = true
	n[ctor] = true
	for _, c := range im.circuits {
		for _, x := range c.excludes {
			if x.pkg == e.m.pkg {
				n[x.name] = true
			}
		}
	}
	return n
}

// markLocal takes the name of t when it is a package-scope type of the
// generated package.
func (e *emitter) markLocal(n namer, t types.Type) {
	var obj *types.TypeName
	switch t := t.(type) {
	case *types.Named:
		obj = t.Obj()
	case *types.Alias:
		obj = t.Obj()
	}
	if obj != nil && obj.Pkg() == e.m.pkg {
		n[obj.Name()] = true
	}
}

// typeParamDecls returns the type parameter list of im with constraints,
// and the bare list for instantiating it.
func (e *emitter) typeParamDecls(im *ifaceModel) (decl, use []jen.Code) {
	tps := im.typeParams()
	if tps == nil {
		return nil, nil
	}
	for tp := range tps.TypeParams() {
		decl = append(decl, jen.Id(tp.Obj().Name()).Add(e.typ(tp.Constraint())))
		use = append(use, jen.Id(tp.Obj().Name()))
	}
	return decl, use
}

// iface writes the wrapper of one interface.
func (e *emitter) iface(im *ifaceModel) {
	name := im.name()
	wrapper, ctor := wrapperNames(name)
	decl, use := e.typeParamDecls(im)
	inst := func(id string) *jen.Statement {
		s := jen.Id(id)
		if use != nil {
			s = s.Types(use...)
		}
		return s
	}
	fields := structFields(im)

	// The type.
	var doc strings.Builder
	switch {
	case len(im.methods) == 0:
		fmt.Fprintf(&doc, "%s wraps %s %s, which has no methods.\n", wrapper, article(name), name)
	case len(im.circuits) == 0:
		fmt.Fprintf(&doc, "%s wraps %s %s; no method goes through a breaker:\n", wrapper, article(name), name)
	default:
		fmt.Fprintf(&doc, "%s wraps %s %s with circuit breakers:\n", wrapper, article(name), name)
	}
	for _, mm := range im.methods {
		switch {
		case mm.circuit != nil:
			fmt.Fprintf(&doc, "  - %s: circuit %q\n", mm.fn.Name(), mm.circuit.name)
		case mm.skipped:
			fmt.Fprintf(&doc, "  - %s: forwarded without a breaker (//purgatory:skip)\n", mm.fn.Name())
		default:
			fmt.Fprintf(&doc, "  - %s: forwarded without a breaker (no error result)\n", mm.fn.Name())
		}
	}
	if len(im.circuits) > 0 {
		doc.WriteString("\nWhile a circuit is open its methods return zero values and a\n*purgatory.OpenError (errors.Is(err, purgatory.ErrOpen) holds), or call the\nfallback set with WithFallback.\n")
	}
	e.doc(strings.TrimSuffix(doc.String(), "\n"))
	members := []jen.Code{
		jen.Id(fields.inner).Add(inst(name)),
		jen.Id(fields.fallback).Add(inst(name)),
	}
	for _, c := range im.circuits {
		members = append(members, jen.Id(fields.circuit[c]).Op("*").Qual(RuntimePath, "Breaker"))
	}
	e.f.Type().Id(wrapper).Types(decl...).Struct(members...)
	e.f.Line()

	// The compile-time check that the wrapper implements the interface.
	if decl == nil {
		e.f.Var().Id("_").Id(name).Op("=").Parens(jen.Op("*").Id(wrapper)).Parens(jen.Nil())
	} else {
		e.f.Func().Id("_").Types(decl...).Params().Block(
			jen.Var().Id("_").Add(inst(name)).Op("=").Parens(jen.Op("*").Add(inst(wrapper))).Parens(jen.Nil()),
		)
	}
	e.f.Line()

	// The constructor.
	base := e.baseNamer(im)
	n := base.clone()
	innerName, factoryName := n.name("inner"), n.name("factory")
	e.docf("%s returns %s %s that calls %s through the\n"+
		"breakers of %s (purgatory.Default() when %s is nil). The first\n"+
		"registration of a circuit name configures it.", ctor, article(wrapper), wrapper, innerName, factoryName, factoryName)
	var lit []jen.Code
	lit = append(lit, jen.Id(fields.inner).Op(":").Id(innerName))
	for _, c := range im.circuits {
		lit = append(lit, jen.Id(fields.circuit[c]).Op(":").Id(factoryName).Dot("Breaker").Call(jen.Lit(c.name), e.config(c)))
	}
	e.f.Func().Id(ctor).Types(decl...).Params(
		jen.Id(innerName).Add(inst(name)),
		jen.Id(factoryName).Op("*").Qual(RuntimePath, "Factory"),
	).Op("*").Add(inst(wrapper)).BlockFunc(func(g *jen.Group) {
		if len(im.circuits) > 0 {
			g.If(jen.Id(factoryName).Op("==").Nil()).Block(
				jen.Id(factoryName).Op("=").Qual(RuntimePath, "Default").Call(),
			)
		}
		g.Return(jen.Op("&").Add(inst(wrapper)).Custom(multi, lit...))
	})
	e.f.Line()

	// WithFallback.
	n = base.clone()
	recv, fb := n.name("c"), n.name("fb")
	e.docf("WithFallback sets fb to be called, with the same arguments, instead of the\n"+
		"inner %s while a method's circuit rejects calls, and returns c. Set it\n"+
		"before c is used.", name)
	e.f.Func().Params(jen.Id(recv).Op("*").Add(inst(wrapper))).Id("WithFallback").Params(jen.Id(fb).Add(inst(name))).Op("*").Add(inst(wrapper)).Block(
		jen.Id(recv).Dot(fields.fallback).Op("=").Id(fb),
		jen.Return(jen.Id(recv)),
	)

	for _, mm := range im.methods {
		e.f.Line()
		e.method(im, mm, inst(wrapper), fields, base.clone())
	}
}

// doc writes a // comment, one line per line of text.
func (e *emitter) doc(text string) {
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			e.f.Comment("")
			continue
		}
		e.f.Comment(line)
	}
}

// docf is doc with formatting.
func (e *emitter) docf(format string, args ...any) { e.doc(fmt.Sprintf(format, args...)) }

// wrapperNames returns the names of the wrapper type and constructor of
// interface name: FooCircuit and NewFooCircuit, or fooCircuit and
// newFooCircuit for an unexported foo.
func wrapperNames(name string) (wrapper, ctor string) {
	wrapper = name + "Circuit"
	if token.IsExported(name) {
		return wrapper, "New" + wrapper
	}
	return wrapper, "new" + strings.ToUpper(name[:1]) + name[1:] + "Circuit"
}

// article returns "an" before a vowel sound, else "a". A leading u that
// sounds like "you" (User, Unit, URL, Utility) takes "a".
func article(word string) string {
	lower := strings.ToLower(word)
	for _, you := range []string{"us", "uni", "uti", "ur", "uu"} {
		if strings.HasPrefix(lower, you) {
			return "a"
		}
	}
	if lower != "" && strings.ContainsRune("aeiou", rune(lower[0])) {
		return "an"
	}
	return "a"
}

// multi renders a composite literal one element a line.
var multi = jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}

// config returns the purgatory.Config literal of c: only the settings its
// annotations give.
func (e *emitter) config(c *circuit) jen.Code {
	var items []jen.Code
	if c.threshold > 0 {
		items = append(items, jen.Id("Threshold").Op(":").Lit(c.threshold))
	}
	if c.ttl > 0 {
		items = append(items, jen.Id("TTL").Op(":").Add(ttlCode(c.ttl)))
	}
	if c.trials > 0 {
		items = append(items, jen.Id("Trials").Op(":").Lit(c.trials))
	}
	if len(c.excludes) > 0 {
		var ms []jen.Code
		for _, x := range c.excludes {
			ms = append(ms, e.matcher(x))
		}
		list := jen.Index().Func().Params(jen.Error()).Bool()
		if len(ms) > 2 {
			list = list.Custom(multi, ms...)
		} else {
			list = list.Values(ms...)
		}
		items = append(items, jen.Id("Exclude").Op(":").Add(list))
	}
	if len(items) == 0 {
		return jen.Qual(RuntimePath, "Config").Values()
	}
	return jen.Qual(RuntimePath, "Config").Custom(multi, items...)
}

// matcher returns the code of one exclude entry.
func (e *emitter) matcher(x exclude) jen.Code {
	var ref *jen.Statement
	if x.pkg == nil || x.pkg == e.m.pkg {
		ref = jen.Id(x.name)
	} else {
		ref = jen.Qual(importPath(x.pkg.Path()), x.name)
	}
	switch x.kind {
	case exVar:
		return jen.Qual(RuntimePath, "Is").Call(ref)
	case exType:
		if x.ptr {
			ref = jen.Op("*").Add(ref)
		}
		return jen.Qual(RuntimePath, "As").Types(ref).Call()
	}
	return ref
}

// ttlCode writes d readably: 30 * time.Second, 1500 * time.Millisecond.
func ttlCode(d time.Duration) jen.Code {
	units := []struct {
		d    time.Duration
		name string
	}{
		{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"},
		{time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}, {time.Nanosecond, "Nanosecond"},
	}
	for _, u := range units {
		if d%u.d == 0 {
			if d == u.d {
				return jen.Qual("time", u.name)
			}
			return jen.Lit(int(d/u.d)).Op("*").Qual("time", u.name)
		}
	}
	return jen.Lit(int(d))
}

// wrapperFields are the names of the wrapper's struct fields.
type wrapperFields struct {
	inner, fallback string
	circuit         map[*circuit]string // one breaker per distinct circuit
}

// structFields names the fields of im's wrapper: inner, fallback and one
// per circuit after its name ("payments-refund" → paymentsRefund), none
// clashing with a method of the wrapper.
func structFields(im *ifaceModel) wrapperFields {
	taken := map[string]bool{"WithFallback": true}
	for _, mm := range im.methods {
		taken[mm.fn.Name()] = true
	}
	name := func(base string) string {
		cand := base
		for i := 2; taken[cand] || token.IsKeyword(cand); i++ {
			cand = base + strconv.Itoa(i)
		}
		taken[cand] = true
		return cand
	}
	out := wrapperFields{inner: name("inner"), fallback: name("fallback"), circuit: map[*circuit]string{}}
	for _, c := range im.circuits {
		base := lowerCamel(c.name)
		if base == "" || token.IsKeyword(base) || taken[base] {
			base += "Circuit"
		}
		out.circuit[c] = name(base)
	}
	return out
}

// lowerCamel joins the letter-and-digit words of s in lowerCamelCase.
func lowerCamel(s string) string {
	words := strings.FieldsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	})
	var b strings.Builder
	for i, w := range words {
		if i == 0 {
			b.WriteString(strings.ToLower(w[:1]) + w[1:])
		} else {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	out := b.String()
	if out != "" && unicode.IsDigit(rune(out[0])) {
		out = "c" + out
	}
	return out
}

// method writes one method of the wrapper; n holds the names it must not
// declare.
func (e *emitter) method(im *ifaceModel, mm *methodModel, recvType *jen.Statement, fields wrapperFields, n namer) {
	sig := mm.sig
	name := mm.fn.Name()
	walkTypes(sig, func(t types.Type) bool { e.markLocal(n, t); return true })

	// Parameters keep their names unless they are blank, unnamed or would
	// shadow something the body uses.
	params := make([]string, sig.Params().Len())
	for i := range params {
		pn := sig.Params().At(i).Name()
		if pn != "" && pn != "_" && !n[pn] {
			params[i] = pn
			n[pn] = true
		}
	}
	for i := range params {
		if params[i] == "" {
			pn := sig.Params().At(i).Name()
			if pn == "" || pn == "_" {
				pn = "p" + strconv.Itoa(i)
			}
			params[i] = n.name(pn)
		}
	}
	var args []jen.Code
	for i, p := range params {
		a := jen.Id(p)
		if sig.Variadic() && i == len(params)-1 {
			a = a.Op("...")
		}
		args = append(args, a)
	}
	recv := n.name("c")
	newFn := func() *jen.Statement {
		return e.f.Func().Params(jen.Id(recv).Op("*").Add(recvType)).Id(name).Add(e.signature(sig, params))
	}
	call := jen.Id(recv).Dot(fields.inner).Dot(name).Call(args...)

	if mm.circuit == nil {
		why := "it has no error result"
		if mm.skipped {
			why = "it is marked //purgatory:skip"
		}
		e.docf("%s calls the inner %s directly, without a breaker: %s.", name, im.name(), why)
		fn := newFn()
		if sig.Results().Len() == 0 {
			fn.Block(call)
		} else {
			fn.Block(jen.Return(call))
		}
		return
	}

	field := fields.circuit[mm.circuit]
	breaker := jen.Id(recv).Dot(field)
	ctx := jen.Qual("context", "Background").Call()
	if ctxParam(sig) == 0 {
		ctx = jen.Id(params[0])
	}
	t, err, done, fb := n.name("t"), n.name("err"), n.name("done"), n.name("fb")
	nres := sig.Results().Len()
	results := make([]string, nres)
	for i := range results {
		results[i] = n.name("r" + strconv.Itoa(i))
	}

	// While open: the fallback, or zero values and the rejection.
	var rejected []jen.Code
	rejected = append(rejected, jen.If(jen.Id(fb).Op(":=").Id(recv).Dot(fields.fallback), jen.Id(fb).Op("!=").Nil()).Block(
		jen.Return(jen.Id(fb).Dot(name).Call(args...)),
	))
	var zeros []jen.Code
	for i := range nres - 1 {
		rt := sig.Results().At(i).Type()
		if z := zeroLit(rt); z != nil {
			zeros = append(zeros, z)
			continue
		}
		rejected = append(rejected, jen.Var().Id(results[i]).Add(e.typ(rt)))
		zeros = append(zeros, jen.Id(results[i]))
	}
	zeros = append(zeros, jen.Id(err))
	rejected = append(rejected, jen.Return(zeros...))

	var resIDs []jen.Code
	for _, r := range results {
		resIDs = append(resIDs, jen.Id(r))
	}
	e.docf("%s calls the inner %s through circuit %q.", name, im.name(), mm.circuit.name)
	newFn().Block(
		jen.List(jen.Id(t), jen.Id(err)).Op(":=").Add(breaker.Clone().Dot("Allow").Call(ctx)),
		jen.If(jen.Id(err).Op("!=").Nil()).Block(rejected...),
		jen.Id(done).Op(":=").False(),
		jen.Defer().Func().Params().Block(
			jen.If(jen.Op("!").Id(done)).Block(
				breaker.Clone().Dot("Done").Call(ctx.Clone(), jen.Id(t), jen.Qual(RuntimePath, "ErrPanicked")),
			),
		).Call(),
		jen.List(resIDs...).Op(":=").Add(call),
		jen.Id(done).Op("=").True(),
		breaker.Clone().Dot("Done").Call(ctx.Clone(), jen.Id(t), jen.Id(results[nres-1])),
		jen.Return(resIDs...),
	)
}

// zeroLit returns a literal for the zero value of t, or nil when the code
// needs a variable of type t instead.
func zeroLit(t types.Type) jen.Code {
	if _, ok := types.Unalias(t).(*types.TypeParam); ok {
		return nil
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer, *types.Slice, *types.Map, *types.Chan, *types.Signature, *types.Interface:
		return jen.Nil()
	case *types.Basic:
		switch {
		case u.Kind() == types.UnsafePointer:
			return jen.Nil()
		case u.Info()&types.IsBoolean != 0:
			return jen.False()
		case u.Info()&types.IsString != 0:
			return jen.Lit("")
		case u.Info()&types.IsNumeric != 0:
			return jen.Lit(0)
		}
	}
	return nil
}
