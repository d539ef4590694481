package generator

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"go/types"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dave/jennifer/jen"
	"golang.org/x/tools/imports"
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
	src := buf.Bytes()
	if m.constraint != nil {
		// After the header, before the package clause (see Config.Tags).
		src = bytes.Replace(src, []byte(header+"\n"), []byte(header+"\n\n//go:build "+m.constraint.String()+"\n"), 1)
	}
	return groupImports(src)
}

// groupImports formats the import block of src, gofmt-clean source, with
// goimports: the standard library's imports apart, as a reader expects.
// Only the head of the file goes through goimports (FormatOnly: the
// imports are right already), because it parses and prints what it gets
// twice, and the head is all it changes.
func groupImports(src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, DefaultOutput, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	if len(f.Imports) == 0 {
		return src, nil
	}
	end := fset.Position(f.Decls[len(f.Decls)-1].End()).Offset // the last import declaration
	head, err := imports.Process(DefaultOutput, src[:end], &imports.Options{FormatOnly: true, Comments: true, TabIndent: true, TabWidth: 8})
	if err != nil {
		return nil, err
	}
	return append(bytes.TrimSuffix(head, []byte("\n")), src[end:]...), nil
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
	e.doc(typeDoc(im, wrapper))
	members := []jen.Code{
		jen.Id(fields.inner).Add(inst(name)),
		jen.Id(fields.fallback).Add(inst(name)),
	}
	for _, c := range im.circuits {
		kind := "Breaker"
		if c.key != nil {
			kind = "Group"
		}
		members = append(members, jen.Id(fields.circuit[c]).Op("*").Qual(RuntimePath, kind))
	}
	e.f.Type().Id(wrapper).Types(decl...).Struct(members...)
	e.f.Line()

	// The compile-time check that the wrapper implements the interface.
	// The line a changed interface breaks says what to do.
	assert := jen.Var().Id("_").Add(inst(name)).Op("=").Parens(jen.Op("*").Add(inst(wrapper))).Parens(jen.Nil()).
		Comment("purgatorygen: if this fails, run go generate")
	if decl == nil {
		e.f.Add(assert)
	} else {
		e.f.Func().Id("_").Types(decl...).Params().Block(assert)
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
		if c.key == nil {
			lit = append(lit, jen.Id(fields.circuit[c]).Op(":").Id(factoryName).Dot("Breaker").Call(jen.Lit(c.name), e.config(c)))
			continue
		}
		args := []jen.Code{jen.Lit(c.name), e.config(c)}
		if c.maxKeys > 0 {
			args = append(args, jen.Qual(RuntimePath, "WithMaxKeys").Call(jen.Lit(c.maxKeys)))
		}
		lit = append(lit, jen.Id(fields.circuit[c]).Op(":").Id(factoryName).Dot("Group").Call(args...))
	}
	e.f.Func().Id(ctor).Types(decl...).Params(
		jen.Id(innerName).Add(inst(name)),
		jen.Id(factoryName).Op("*").Qual(RuntimePath, "Factory"),
	).Op("*").Add(inst(wrapper)).BlockFunc(func(g *jen.Group) {
		g.If(jen.Id(factoryName).Op("==").Nil()).Block(
			jen.Id(factoryName).Op("=").Qual(RuntimePath, "Default").Call(),
		)
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

// typeDoc returns the doc comment of im's wrapper: what each method goes
// through, listed, or summarised for a large interface.
func typeDoc(im *ifaceModel, wrapper string) string {
	var b strings.Builder
	name := im.name()
	if len(im.methods) <= maxListed {
		fmt.Fprintf(&b, "%s wraps %s %s with circuit breakers:\n", wrapper, article(name), name)
		for _, mm := range im.methods {
			if mm.circuit != nil {
				fmt.Fprintf(&b, "  - %s: %s\n", mm.fn.Name(), circuitDoc(mm))
			} else {
				fmt.Fprintf(&b, "  - %s: forwarded without a breaker (%s)\n", mm.fn.Name(), forwardNote(mm.forward))
			}
		}
	} else {
		fmt.Fprintf(&b, "%s wraps %s %s with circuit breakers; of its %d methods,\n", wrapper, article(name), name, len(im.methods))
		// One line per circuit and per reason to forward, in first-use order.
		type group struct {
			head  string
			names []string
		}
		var groups []*group
		byKey := map[string]*group{}
		for _, mm := range im.methods {
			key := "\x00" + forwardNote(mm.forward)
			if mm.circuit != nil {
				key = mm.circuit.name
			}
			g := byKey[key]
			if g == nil {
				g = &group{}
				if mm.circuit != nil {
					g.head = "through " + circuitDoc(mm)
				} else {
					g.head = fmt.Sprintf("forwarded without a breaker (%s)", forwardNote(mm.forward))
				}
				byKey[key] = g
				groups = append(groups, g)
			}
			g.names = append(g.names, mm.fn.Name())
		}
		for _, g := range groups {
			list := strings.Join(g.names, ", ")
			if len(g.names) > 3 {
				list = strings.Join(g.names[:3], ", ") + ", ..."
			}
			fmt.Fprintf(&b, "  - %d %s: %s\n", len(g.names), g.head, list)
		}
	}
	b.WriteString("\nWhile a circuit is open its methods return zero values and a\n*purgatory.OpenError (errors.Is(err, purgatory.ErrOpen) holds), or call the\nfallback set with WithFallback.")
	return b.String()
}

// circuitDoc says which circuit guarded method mm goes through, and what
// it counts when that is not its error.
func circuitDoc(mm *methodModel) string {
	s := fmt.Sprintf("circuit %q", mm.circuit.name)
	if mm.key != nil {
		s = fmt.Sprintf("circuits %q, one per %s", mm.circuit.name+"/<key>", mm.key.text)
	}
	if mm.result != nil {
		s += ", counting what " + mm.result.name() + " returns"
	}
	return s
}

// maxListed is the number of methods up to which the wrapper's doc lists
// every method.
const maxListed = 12

// forwardNote says why a method is forwarded, for the docs.
func forwardNote(r forwardReason) string {
	switch r {
	case forwardNoError:
		return "no error result"
	case forwardConcreteError:
		return "its last result is a concrete error type, not error: declare it as error to guard it"
	case forwardSkip:
		return "//purgatory:skip"
	case forwardSkipKey:
		return "skip="
	case forwardClose:
		return "Close is not guarded unless annotated"
	}
	return ""
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

// article returns "an" before a vowel sound, else "a". An initialism
// (URL, S3, HTTPClient) is read letter by letter: "an S3", "a URL". A
// word's leading u that sounds like "you" (User, Unit, Utility) takes "a".
func article(word string) string {
	r := []rune(word)
	if len(r) >= 2 && unicode.IsUpper(r[0]) && (unicode.IsUpper(r[1]) || unicode.IsDigit(r[1])) {
		if strings.ContainsRune("AEFHILMNORSX", r[0]) {
			return "an"
		}
		return "a"
	}
	lower := strings.ToLower(word)
	for _, you := range []string{"us", "uni", "uti", "ur", "uu"} {
		if strings.HasPrefix(lower, you) {
			return "a"
		}
	}
	if first, _ := utf8.DecodeRuneInString(lower); strings.ContainsRune("aeiouàâäéèêëíîïóôöúùûü", first) {
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
	for _, l := range []struct {
		field   string
		entries []exclude
	}{{"Exclude", c.excludes}, {"Ignore", c.ignores}} {
		if len(l.entries) == 0 {
			continue
		}
		var ms []jen.Code
		for _, x := range l.entries {
			ms = append(ms, e.matcher(x))
		}
		list := jen.Index().Func().Params(jen.Error()).Bool()
		if len(ms) > 2 {
			list = list.Custom(multi, ms...)
		} else {
			list = list.Values(ms...)
		}
		items = append(items, jen.Id(l.field).Op(":").Add(list))
	}
	if c.rate > 0 {
		items = append(items, jen.Id("FailureRate").Op(":").Op(strconv.FormatFloat(c.rate/100, 'g', -1, 64)))
	}
	if c.window > 0 {
		items = append(items, jen.Id("Window").Op(":").Add(ttlCode(c.window)))
	}
	if c.minCalls > 0 {
		items = append(items, jen.Id("MinCalls").Op(":").Lit(c.minCalls))
	}
	if c.slow > 0 {
		items = append(items, jen.Id("SlowCall").Op(":").Add(ttlCode(c.slow)))
	}
	if c.maxTTL > 0 {
		items = append(items, jen.Id("MaxTTL").Op(":").Add(ttlCode(c.maxTTL)))
	}
	if len(items) == 0 {
		return jen.Qual(RuntimePath, "Config").Values()
	}
	return jen.Qual(RuntimePath, "Config").Custom(multi, items...)
}

// ref returns the code that names the package-level object name of pkg.
func (e *emitter) ref(pkg *types.Package, name string) *jen.Statement {
	if pkg == nil || pkg.Path() == e.m.pkg.Path() {
		return jen.Id(name)
	}
	return jen.Qual(importPath(pkg.Path()), name)
}

// matcher returns the code of one exclude or ignore entry.
func (e *emitter) matcher(x exclude) jen.Code {
	ref := e.ref(x.pkg, x.name)
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
