package generator

import (
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/token"
	"go/types"
	"slices"
	"strings"
)

// validator checks the annotations of one package and builds its model.
type validator struct {
	l        *loaded
	cfg      Config
	fset     *token.FileSet
	dir      string
	errs     ErrorList
	warns    ErrorList
	circuits map[string]*circuit
	// generated are the names the output file declares (FooCircuit,
	// NewFooCircuit), each with the interface it is generated for.
	generated map[string]*types.TypeName
	// intended are names of wrappers the user evidently wants (annotated
	// interfaces, with a mistake or not): "undefined: NewFooCircuit" is
	// then not worth reporting.
	intended map[string]bool
	// deps are the packages the package depends on, by path, with those
	// loaded for exclude entries (see dependencies and importPackage).
	deps map[string]*types.Package
	// loaded are the paths of deps loaded apart, in full (importPackage).
	loaded map[string]bool
	// viaImport maps the path of a package an annotation entry names
	// through a file's import to that entry in its import-path form.
	viaImport map[string]string
}

func (v *validator) errorf(pos token.Pos, format string, args ...any) {
	v.errs = append(v.errs, errorf(v.fset, v.dir, pos, format, args...))
}

func (v *validator) warnf(pos token.Pos, format string, args ...any) {
	v.warns = append(v.warns, errorf(v.fset, v.dir, pos, format, args...))
}

// validate checks the annotations of l and returns its model, its errors
// and its warnings; found collects the names of the interfaces seen (for
// -type).
func validate(l *loaded, cfg Config, found map[string]bool) (*model, ErrorList, ErrorList) {
	if l.pkg.Types == nil || l.pkg.TypesInfo == nil || len(l.pkg.Syntax) == 0 {
		return nil, l.errs, nil
	}
	v := &validator{l: l, cfg: cfg, fset: l.pkg.Fset, dir: cfg.Dir, circuits: map[string]*circuit{},
		generated: map[string]*types.TypeName{}, intended: map[string]bool{}, loaded: map[string]bool{},
		viaImport: map[string]string{}}
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
	constraints := map[string]bool{}
	for _, f := range l.pkg.Syntax {
		if f == l.gen {
			continue
		}
		// With tags, the interfaces of the files a build without them
		// has are the untagged run's (see Config.Tags): checked, not emitted.
		emitHere := !l.tagged || l.tagOnly[l.pkg.Fset.Position(f.Package).Filename]
		misses := nearMisses(f)
		all := map[*ast.Comment]*directive{}
		for _, d := range directives(f.Comments...) {
			all[d.comment] = d
		}
		if len(all) == 0 && len(misses) == 0 {
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
				if len(ds) > 0 || hasNearMiss(misses, docs...) {
					wrapper, ctor := wrapperNames(ts.Name.Name)
					v.intended[wrapper], v.intended[ctor] = true, true
				}
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
				if ts.Name.Name == "_" {
					v.errorf(d.pos, "//purgatory:circuit on the blank type _, which code cannot name; give the interface a name")
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
				found[obj.Name()] = true
				if !want(obj.Name()) {
					continue // -type leaves it out: nothing of it is checked
				}
				if emitHere {
					v.claimNames(m, obj, d)
				}
				if im := v.iface(f, ts, obj, d, methodDirs); im != nil && emitHere {
					m.ifaces = append(m.ifaces, im)
					x := buildConstraint(f)
					if x != nil && !l.tagged && v.hasUnconstrained() {
						v.warnf(ts.Name.Pos(), "%s is declared under //go:build %s, but its wrapper goes to %s, which has no build constraint: a build where that does not hold fails with undefined: %s; declare %s in a file without a build constraint",
							obj.Name(), x, l.output, obj.Name(), obj.Name())
					}
					if x != nil && l.tagged && !constraints[x.String()] {
						constraints[x.String()] = true
						if m.constraint == nil {
							m.constraint = x
						} else {
							m.constraint = &constraint.AndExpr{X: m.constraint, Y: x}
						}
					}
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
		for c, kind := range misses {
			if kind == "" {
				kind = dirCircuit
			}
			v.errorf(c.Slash, "this comment is not read as a directive: write //purgatory:%s, with no space after // (the go tool's rule for directives)", kind)
		}
	}
	errs := append(v.unusedImportHint(typeErrors(l.errs, v.intended)), v.errs...)
	if len(errs) > 0 {
		return nil, errs, nil
	}
	return m, nil, v.warns
}

// hasUnconstrained reports whether a source file of the package has no
// build constraint (so that the package is built where a constrained
// file is left out).
func (v *validator) hasUnconstrained() bool {
	for _, f := range v.l.pkg.Syntax {
		if f != v.l.gen && buildConstraint(f) == nil {
			return true
		}
	}
	return false
}

// hasNearMiss reports whether one of the comment groups holds a near miss.
func hasNearMiss(misses map[*ast.Comment]string, groups ...*ast.CommentGroup) bool {
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, c := range g.List {
			if _, ok := misses[c]; ok {
				return true
			}
		}
	}
	return false
}

// claimNames takes the names of obj's wrapper and constructor, reporting a
// clash with a declaration of the package or with a name generated for
// another interface (Foo and NewFoo both want NewFooCircuit).
func (v *validator) claimNames(m *model, obj *types.TypeName, d *directive) {
	wrapper, ctor := wrapperNames(obj.Name())
	for _, gen := range []string{wrapper, ctor} {
		if m.taken[gen] {
			other := m.pkg.Scope().Lookup(gen)
			v.errorf(d.pos, "cannot generate %s: it is already declared at %s; rename one of them", gen, position(v.fset, v.dir, other.Pos()))
			continue
		}
		if other, ok := v.generated[gen]; ok {
			v.errorf(d.pos, "cannot generate %s for %s: it is also generated for %s (at %s); rename one of the interfaces, or generate them into different files with -type and -o",
				gen, obj.Name(), other.Name(), position(v.fset, v.dir, other.Pos()))
			continue
		}
		v.generated[gen] = obj
	}
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

// unusedImportHint adds to the compiler's "imported and not used" for a
// package that an annotation names through that import the hint that the
// annotation can name it by its import path, without the import.
func (v *validator) unusedImportHint(errs ErrorList) ErrorList {
	for i, e := range errs {
		rest, ok := strings.CutPrefix(e.Msg, `"`)
		if !ok || !strings.HasSuffix(e.Msg, "and not used") {
			continue
		}
		path, _, _ := strings.Cut(rest, `"`)
		if entry := v.viaImport[path]; entry != "" {
			c := *e
			c.Msg += fmt.Sprintf("; if the file imports it only for an annotation, remove the import and name the package by its path: %s", entry)
			errs[i] = &c
		}
	}
	return errs
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
	top, skips := v.settings(d, scope, base, true)
	// With a bad interface annotation the methods are still checked, but
	// no circuit is registered (it could only report spurious clashes).
	topBad := len(v.errs) > nerr
	if !topBad {
		// Declared even when no method uses it, so that contradicting
		// annotations are reported.
		topBad = v.register(top, d.pos) == nil
	}
	it := obj.Type().Underlying().(*types.Interface)
	if !it.IsMethodSet() {
		v.errorf(ts.Name.Pos(), "%s is a constraint interface (it has a type set); only basic interfaces can be wrapped", obj.Name())
		return nil
	}
	im := &ifaceModel{obj: obj}
	order := methodOrder(ts, it)
	for name, ds := range methodDirs {
		if i, _ := lookupMethod(it, name); i < 0 {
			v.errorf(ds[0].pos, "method %s is not in the method set of %s", name, obj.Name())
		}
	}
	skipped := map[string]item{}
	for _, s := range skips {
		if i, _ := lookupMethod(it, s.text); i < 0 {
			msg := fmt.Sprintf("skip %s: %s has no method %s", s.text, obj.Name(), s.text)
			if sug := suggest(s.text, methodNames(it)); sug != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", sug)
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, s.pos, "%s", msg))
			continue
		}
		skipped[s.text] = s
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
		if what := unreachableIn(sig, v.l.pkg.Types); what != "" {
			v.errorf(ts.Name.Pos(), "method %s of %s uses %s", fn.Name(), obj.Name(), what)
			continue
		}
		mm := &methodModel{fn: fn, sig: sig, ctx: contextOf(sig)}
		var cd, sd *directive
		for _, x := range methodDirs[fn.Name()] {
			switch x.kind {
			case dirSkip:
				if len(x.args) > 0 || len(x.bad) > 0 {
					v.errorf(x.pos, "//purgatory:skip takes no arguments")
				}
				if sd != nil {
					v.errorf(x.pos, "duplicate //purgatory:skip")
				}
				sd = x
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
		sk, inSkip := skipped[fn.Name()]
		switch {
		case sd != nil && cd != nil:
			v.errorf(cd.pos, "method %s has both //purgatory:skip and //purgatory:circuit", fn.Name())
			continue
		case inSkip && cd != nil:
			v.errorf(cd.pos, "method %s has //purgatory:circuit but is in the skip list at %s; remove one of them", fn.Name(), position(v.fset, v.dir, sk.pos))
			continue
		case sd != nil:
			mm.forward = forwardSkip
		case inSkip:
			mm.forward = forwardSkipKey
		case !returnsError(sig):
			mm.forward = forwardNoError
			if concreteError(sig) {
				mm.forward = forwardConcreteError
			}
		case isClose(fn) && cd == nil:
			mm.forward = forwardClose
		}
		if cd != nil && (mm.forward == forwardNoError || mm.forward == forwardConcreteError) {
			v.errorf(cd.pos, "method %s has no error result for its circuit to count; remove //purgatory:circuit or use //purgatory:skip", fn.Name())
			continue
		}
		if mm.forward == guarded {
			s, pos := top, d.pos
			if cd != nil {
				inherit := *top
				inherit.name = top.name + "." + fn.Name()
				nerr := len(v.errs)
				s, _ = v.settings(cd, scope, &inherit, false)
				pos = cd.pos
				if len(v.errs) > nerr {
					continue
				}
			}
			if topBad {
				continue
			}
			if s.key != nil {
				kp, ok := v.resolveKey(s.key, fn, sig, s.key == top.key)
				if !ok {
					continue
				}
				mm.key = kp
			}
			if s.result != nil {
				if !v.checkResult(s.result, fn, sig, s.result == top.result) {
					continue
				}
				mm.result = s.result
			} else if st := statusOf(sig); st != nil {
				v.warnStatus(ts, fn, st)
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
	if len(v.errs) == nerr {
		v.reportUnguarded(ts, d, im)
	}
	return im
}
