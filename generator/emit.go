package generator

import (
	"bytes"
	"fmt"
	"strings"
	"time"

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
