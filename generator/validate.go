package generator

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// validator checks the annotations of one package and builds its model.
type validator struct {
	l        *loaded
	fset     *token.FileSet
	dir      string
	errs     ErrorList
	circuits map[string]*circuit
	// generated are the names the file declares (FooCircuit, NewFooCircuit).
	generated map[string]bool
}

func (v *validator) errorf(pos token.Pos, format string, args ...any) {
	v.errs = append(v.errs, errorf(v.fset, v.dir, pos, format, args...))
}

// validate checks the annotations of l and returns its model; found
// collects the names of the interfaces seen (for -type).
func validate(l *loaded, cfg Config, found map[string]bool) (*model, ErrorList) {
	if l.pkg.Types == nil || l.pkg.TypesInfo == nil || len(l.pkg.Syntax) == 0 {
		return nil, l.errs
	}
	v := &validator{l: l, fset: l.pkg.Fset, dir: cfg.Dir, circuits: map[string]*circuit{}, generated: map[string]bool{}}
	m := &model{pkg: l.pkg.Types, taken: map[string]bool{}}
	genNames := map[string]bool{}
	if l.gen != nil {
		for _, d := range l.gen.Decls {
			for _, id := range declNames(d) {
				genNames[id] = true
			}
		}
	}
	for _, n := range m.pkg.Scope().Names() {
		if !genNames[n] {
			m.taken[n] = true
		}
	}
	want := func(name string) bool { return len(cfg.Types) == 0 || slices.Contains(cfg.Types, name) }
	for _, f := range l.pkg.Syntax {
		if f == l.gen {
			continue
		}
		all := map[*ast.Comment]*directive{}
		for _, d := range directives(f.Comments...) {
			all[d.comment] = d
		}
		if len(all) == 0 {
			continue
		}
		used := func(ds []*directive) []*directive {
			for _, d := range ds {
				delete(all, d.comment)
			}
			return ds
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				docs := []*ast.CommentGroup{ts.Doc}
				if !gd.Lparen.IsValid() {
					docs = append(docs, gd.Doc)
				}
				ds := used(directives(docs...))
				var methodDirs map[string][]*directive
				if it, ok := ts.Type.(*ast.InterfaceType); ok {
					methodDirs = v.methodDirectives(it, used)
				}
				if len(ds) == 0 {
					for _, mds := range methodDirs {
						v.errorf(mds[0].pos, "//purgatory:%s on a method of %s, which has no //purgatory:circuit annotation", mds[0].kind, ts.Name.Name)
					}
					continue
				}
				d := v.interfaceDirective(ds)
				if d == nil {
					continue
				}
				obj, _ := l.pkg.TypesInfo.Defs[ts.Name].(*types.TypeName)
				if obj == nil {
					continue
				}
				if _, ok := obj.Type().Underlying().(*types.Interface); !ok {
					v.errorf(d.pos, "//purgatory:circuit on %s, which is not an interface type; annotate the interface that your code calls", ts.Name.Name)
					continue
				}
				wrapper, ctor := wrapperNames(obj.Name())
				for _, gen := range []string{wrapper, ctor} {
					if m.taken[gen] {
						other := m.pkg.Scope().Lookup(gen)
						v.errorf(d.pos, "cannot generate %s: it is already declared at %s", gen, position(v.fset, v.dir, other.Pos()))
					}
				}
				found[obj.Name()] = true
				v.generated[wrapper] = true
				v.generated[ctor] = true
				if !want(obj.Name()) {
					continue
				}
				if im := v.iface(f, ts, obj, d, methodDirs); im != nil {
					m.ifaces = append(m.ifaces, im)
				}
			}
		}
		for _, d := range all {
			if d.kind == dirCircuit || d.kind == dirSkip {
				v.errorf(d.pos, "//purgatory:%s must be in the doc comment of an interface type or of one of its methods", d.kind)
			} else {
				v.unknownDirective(d)
			}
		}
	}
	if errs := typeErrors(l.errs, v.generated); len(errs) > 0 {
		return nil, errs
	}
	return m, v.errs
}

// typeErrors drops from errs those that only say that a name this run
// generates is undefined: code that already uses NewFooCircuit must not
// stop the first generation.
func typeErrors(errs ErrorList, generated map[string]bool) ErrorList {
	var out ErrorList
	for _, e := range errs {
		if name, ok := strings.CutPrefix(e.Msg, "undefined: "); ok && generated[name] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// declNames returns the package-scope names d declares.
func declNames(d ast.Decl) []string {
	var out []string
	switch d := d.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil {
			out = append(out, d.Name.Name)
		}
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				out = append(out, s.Name.Name)
			case *ast.ValueSpec:
				for _, n := range s.Names {
					out = append(out, n.Name)
				}
			}
		}
	}
	return out
}

// unknownDirective reports a //purgatory: directive that is neither circuit nor skip.
func (v *validator) unknownDirective(d *directive) {
	msg := fmt.Sprintf("unknown directive //purgatory:%s", d.kind)
	if s := suggest(d.kind, []string{dirCircuit, dirSkip}); s != "" {
		msg += fmt.Sprintf(" (did you mean //purgatory:%s?)", s)
	}
	v.errs = append(v.errs, errorf(v.fset, v.dir, d.pos, "%s", msg))
}

// interfaceDirective returns the one //purgatory:circuit of a type's doc
// comment, reporting anything else there.
func (v *validator) interfaceDirective(ds []*directive) *directive {
	var d *directive
	for _, x := range ds {
		switch x.kind {
		case dirCircuit:
			if d != nil {
				v.errorf(x.pos, "duplicate //purgatory:circuit (the first is at %s)", position(v.fset, v.dir, d.pos))
				continue
			}
			d = x
		case dirSkip:
			v.errorf(x.pos, "//purgatory:skip applies to interface methods, not to types")
		default:
			v.unknownDirective(x)
		}
	}
	return d
}

// methodDirectives returns the directives of each explicit method of it,
// reporting those on embedded interfaces.
func (v *validator) methodDirectives(it *ast.InterfaceType, used func([]*directive) []*directive) map[string][]*directive {
	out := map[string][]*directive{}
	for _, field := range it.Methods.List {
		ds := used(directives(field.Doc, field.Comment))
		if len(ds) == 0 {
			continue
		}
		if len(field.Names) == 0 {
			v.errorf(ds[0].pos, "//purgatory:%s on an embedded interface; annotate the methods of the interface that declares them, or declare them here", ds[0].kind)
			continue
		}
		out[field.Names[0].Name] = ds
	}
	return out
}

// iface builds the model of one annotated interface.
func (v *validator) iface(f *ast.File, ts *ast.TypeSpec, obj *types.TypeName, d *directive, methodDirs map[string][]*directive) *ifaceModel {
	scope := v.l.pkg.TypesInfo.Scopes[f]
	base := &settings{name: v.l.pkg.Types.Name() + "." + obj.Name()}
	nerr := len(v.errs)
	top := v.settings(d, scope, base)
	// With a bad interface annotation the methods are still checked, but
	// no circuit is registered (it could only report spurious clashes).
	topBad := len(v.errs) > nerr
	var topCircuit *circuit
	if !topBad {
		// Declared even when no method uses it, so that contradicting
		// annotations are reported.
		topCircuit = v.register(top, d.pos)
		topBad = topCircuit == nil
	}
	it := obj.Type().Underlying().(*types.Interface)
	if !it.IsMethodSet() {
		v.errorf(ts.Name.Pos(), "%s is a constraint interface (it has a type set); only basic interfaces can be wrapped", obj.Name())
		return nil
	}
	im := &ifaceModel{obj: obj}
	// Explicit methods in source order, then the embedded ones by name.
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
	order = append(order, rest...)
	for name, ds := range methodDirs {
		if i, _ := lookupMethod(it, name); i < 0 {
			v.errorf(ds[0].pos, "method %s is not in the method set of %s", name, obj.Name())
		}
	}
	for _, fn := range order {
		if !fn.Exported() && fn.Pkg() != v.l.pkg.Types {
			v.errorf(ts.Name.Pos(), "%s has the unexported method %s of package %s, which cannot be implemented outside it", obj.Name(), fn.Name(), fn.Pkg().Path())
			continue
		}
		if fn.Name() == "WithFallback" {
			v.errorf(ts.Name.Pos(), "%s has a method WithFallback, which the generated wrapper declares itself", obj.Name())
			continue
		}
		sig := fn.Type().(*types.Signature)
		if what := unexportedIn(sig, v.l.pkg.Types); what != "" {
			v.errorf(ts.Name.Pos(), "method %s of %s uses %s, which is not exported by its package", fn.Name(), obj.Name(), what)
			continue
		}
		mm := &methodModel{fn: fn, sig: sig}
		hasErr := returnsError(sig)
		var cd *directive
		for _, x := range methodDirs[fn.Name()] {
			switch x.kind {
			case dirSkip:
				if len(x.args) > 0 || len(x.bad) > 0 {
					v.errorf(x.pos, "//purgatory:skip takes no arguments")
				}
				if mm.skipped {
					v.errorf(x.pos, "duplicate //purgatory:skip")
				}
				mm.skipped = true
			case dirCircuit:
				if cd != nil {
					v.errorf(x.pos, "duplicate //purgatory:circuit (the first is at %s)", position(v.fset, v.dir, cd.pos))
					continue
				}
				cd = x
			default:
				v.unknownDirective(x)
			}
		}
		if mm.skipped && cd != nil {
			v.errorf(cd.pos, "method %s has both //purgatory:skip and //purgatory:circuit", fn.Name())
			continue
		}
		if cd != nil && !hasErr {
			v.errorf(cd.pos, "method %s has no error result for its circuit to count; remove //purgatory:circuit or use //purgatory:skip", fn.Name())
			continue
		}
		if !mm.skipped && hasErr {
			s, pos := top, d.pos
			if cd != nil {
				inherit := *top
				inherit.name = top.name + "." + fn.Name()
				nerr := len(v.errs)
				s, pos = v.settings(cd, scope, &inherit), cd.pos
				if len(v.errs) > nerr {
					continue
				}
			}
			if topBad {
				continue
			}
			mm.circuit = v.register(s, pos)
			if mm.circuit == nil {
				continue
			}
			if !slices.Contains(im.circuits, mm.circuit) {
				im.circuits = append(im.circuits, mm.circuit)
			}
		}
		im.methods = append(im.methods, mm)
	}
	if topBad {
		return nil
	}
	return im
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

var errorType = types.Universe.Lookup("error").Type()

// register returns the package's circuit called s.name, creating it, or
// reports a clash when it exists with other settings.
func (v *validator) register(s *settings, pos token.Pos) *circuit {
	if c, ok := v.circuits[s.name]; ok {
		if !c.equal(s) {
			v.errorf(pos, "circuit %q is declared here with %s but at %s with %s", s.name, s, c.pos, &c.settings)
			return nil
		}
		return c
	}
	c := &circuit{settings: *s, pos: position(v.fset, v.dir, pos)}
	v.circuits[s.name] = c
	return c
}

// settings parses a //purgatory:circuit directive on top of inherit.
func (v *validator) settings(d *directive, scope *types.Scope, inherit *settings) *settings {
	s := *inherit
	s.excludes = slices.Clone(inherit.excludes)
	for _, b := range d.bad {
		v.errorf(b.pos, "expected key=value, got %q", b.text)
	}
	seen := map[string]token.Pos{}
	for _, a := range d.args {
		if !slices.Contains(keys, a.key) {
			msg := fmt.Sprintf("unknown key %q", a.key)
			if sug := suggest(a.key, keys); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			} else {
				msg += " (the keys are " + strings.Join(keys, ", ") + ")"
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, a.keyPos, "%s", msg))
			continue
		}
		if first, dup := seen[a.key]; dup {
			v.errorf(a.keyPos, "duplicate key %q (the first is at %s)", a.key, position(v.fset, v.dir, first))
			continue
		}
		seen[a.key] = a.keyPos
		switch a.key {
		case keyName:
			if a.value == "" {
				v.errorf(a.valPos, "bad value for name: empty")
				continue
			}
			s.name = a.value
		case keyThreshold, keyTrials:
			n, err := strconv.Atoi(a.value)
			if err != nil || n < 1 {
				v.errorf(a.valPos, "bad value for %s: %q is not an integer >= 1", a.key, a.value)
				continue
			}
			if a.key == keyThreshold {
				s.threshold = n
			} else {
				s.trials = n
			}
		case keyTTL:
			ttl, err := time.ParseDuration(a.value)
			if err != nil || ttl <= 0 {
				v.errorf(a.valPos, "bad value for ttl: %q is not a duration > 0 such as 30s or 1m30s", a.value)
				continue
			}
			s.ttl = ttl
		case keyExclude:
			s.excludes = nil
			for _, it := range a.items() {
				if e, ok := v.resolveExclude(it, scope); ok {
					s.excludes = append(s.excludes, e)
				}
			}
		}
	}
	return &s
}

// unexportedIn returns the first type in sig that code outside its package
// cannot name, or "".
func unexportedIn(sig *types.Signature, local *types.Package) string {
	found := ""
	foreign := func(pkg *types.Package) bool { return pkg != nil && pkg != local }
	walkTypes(sig, func(t types.Type) bool {
		if found != "" {
			return false
		}
		var obj *types.TypeName
		switch t := t.(type) {
		case *types.Named:
			obj = t.Obj()
		case *types.Alias:
			obj = t.Obj()
		case *types.Struct:
			for f := range t.Fields() {
				if !f.Exported() && foreign(f.Pkg()) {
					found = "an unexported struct field of " + f.Pkg().Path()
					return false
				}
			}
		case *types.Interface:
			for m := range t.ExplicitMethods() {
				if !m.Exported() && foreign(m.Pkg()) {
					found = "an unexported method of " + m.Pkg().Path()
					return false
				}
			}
		}
		if obj != nil && foreign(obj.Pkg()) && !obj.Exported() {
			found = obj.Pkg().Path() + "." + obj.Name()
			return false
		}
		return true
	})
	return found
}
