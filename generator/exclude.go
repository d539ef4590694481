package generator

// Validate, exclude entries: resolve each with go/types in the file that declares the interface.

import (
	"errors"
	"fmt"
	"go/token"
	"go/types"
	"slices"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// resolveExclude resolves one exclude= or ignore= entry (what says which)
// in the scope of the file that declares the interface.
func (v *validator) resolveExclude(what string, it item, scope *types.Scope) (exclude, bool) {
	text := it.text
	e := exclude{text: text}
	if text == "" {
		v.errorf(it.pos, "bad value for %s: empty entry", what)
		return e, false
	}
	if strings.HasPrefix(text, "*") {
		e.ptr = true
		text = text[1:]
	}
	obj := v.lookup(what, it, text, scope, "error variables, error types and func(error) bool predicates")
	if obj == nil {
		return e, false
	}
	e.pkg, e.name = obj.Pkg(), obj.Name()
	want := "an error variable, an error type or a func(error) bool"
	if _, ok := obj.(*types.PkgName); ok {
		v.errorf(it.pos, "%s %s: %s is a package, not %s", what, it.text, text, want)
		return e, false
	}
	switch obj := obj.(type) {
	case *types.TypeName:
		t := obj.Type()
		if n, ok := t.(*types.Named); ok && n.TypeParams().Len() > 0 {
			v.errorf(it.pos, "%s %s: generic type %s needs type arguments; use a func(error) bool instead", what, it.text, obj.Name())
			return e, false
		}
		if _, ok := t.Underlying().(*types.Interface); ok && !e.ptr {
			if types.Implements(t, errorIface) {
				e.kind = exType
				return e, true
			}
		}
		if e.ptr {
			t = types.NewPointer(t)
		}
		if !types.Implements(t, errorIface) {
			hint := ""
			if !e.ptr && types.Implements(types.NewPointer(t), errorIface) {
				hint = fmt.Sprintf(" (did you mean *%s?)", text)
			}
			v.errorf(it.pos, "%s %s: type %s does not implement error%s", what, it.text, it.text, hint)
			return e, false
		}
		e.kind = exType
		return e, true
	case *types.Var:
		if e.ptr {
			v.errorf(it.pos, "%s %s: %s is a variable, not a type", what, it.text, text)
			return e, false
		}
		if isPredicate(obj.Type()) {
			e.kind = exPred
			return e, true
		}
		if !types.Implements(obj.Type(), errorIface) {
			v.errorf(it.pos, "%s %s: variable of type %s is not an error", what, it.text, types.TypeString(obj.Type(), types.RelativeTo(v.l.pkg.Types)))
			return e, false
		}
		e.kind = exVar
		return e, true
	case *types.Func:
		if e.ptr || !isPredicate(obj.Type()) {
			v.errorf(it.pos, "%s %s: func %s has type %s, not func(error) bool", what, it.text, text, types.TypeString(obj.Type(), types.RelativeTo(v.l.pkg.Types)))
			return e, false
		}
		e.kind = exPred
		return e, true
	case *types.Const:
		// A constant of a type that implements error (syscall.Errno,
		// a typed string error) is matched with errors.Is like a variable.
		if !e.ptr && types.Implements(obj.Type(), errorIface) {
			e.kind = exVar
			return e, true
		}
		v.errorf(it.pos, "%s %s: %s is a constant of type %s, which does not implement error; %s takes %s", what, it.text, text,
			types.TypeString(obj.Type(), types.RelativeTo(v.l.pkg.Types)), what, want)
	default:
		v.errorf(it.pos, "%s %s: %s is not %s", what, it.text, text, want)
	}
	return e, false
}

// lookup resolves text, the name in entry it of key what (with a
// leading * removed), in the scope of the file that declares the
// interface: a name of the file or package, pkg.Name for a package the
// file (or another file of the package) imports, or path.Name for a
// package by its import path. It reports the error and returns nil when
// the name does not resolve; kinds says what the key names, for the hint.
// What it returns is declared at package level (or in the universe): it
// searches the file scope and those above it, never a function's.
func (v *validator) lookup(what string, it item, text string, scope *types.Scope, kinds string) types.Object {
	var obj types.Object
	if i := strings.LastIndex(text, "."); i >= 0 {
		q, name := text[:i], text[i+1:]
		pkg, msg := v.qualifier(q, scope)
		if pn, ok := scope.Lookup(q).(*types.PkgName); ok && v.viaImport[pn.Imported().Path()] == "" {
			// If the file imports the package only for this entry, the
			// compiler says "imported and not used": the hint (see
			// unusedImportHint) names the import-path form.
			v.viaImport[pn.Imported().Path()] = what + "=" + pn.Imported().Path() + "." + name
		}
		if pkg == nil {
			v.errorf(it.pos, "%s %s: %s", what, it.text, msg)
			return nil
		}
		obj = pkg.Scope().Lookup(name)
		if obj == nil || !obj.Exported() {
			msg := fmt.Sprintf("%s %s: undefined: %s.%s", what, it.text, q, name)
			if s := suggest(name, exportedNames(pkg.Scope())); s != "" {
				msg += fmt.Sprintf(" (did you mean %s.%s?)", q, s)
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, it.pos, "%s", msg))
			return nil
		}
	} else {
		_, obj = scope.LookupParent(text, token.NoPos)
		if obj == nil {
			msg := fmt.Sprintf("%s %s: undefined: %s", what, it.text, text)
			if s := suggest(text, v.l.pkg.Types.Scope().Names()); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			} else {
				msg += "; " + what + " names " + kinds + " declared in this package or in a package this file imports"
			}
			v.errs = append(v.errs, errorf(v.fset, v.dir, it.pos, "%s", msg))
			return nil
		}
	}
	return obj
}

// qualifier resolves the qualifier of a qualified exclude entry: the
// name of a package the file imports, an import path
// (database/sql.ErrNoRows), or the name of a package another file of the
// package imports. It returns nil and what to tell the user when none fits.
func (v *validator) qualifier(q string, scope *types.Scope) (*types.Package, string) {
	if pn, ok := scope.Lookup(q).(*types.PkgName); ok {
		return pn.Imported(), ""
	}
	// A package that another file of the package imports under that name.
	var found []*types.Package
	for _, f := range v.l.pkg.Syntax {
		fs := v.l.pkg.TypesInfo.Scopes[f]
		if fs == nil {
			continue
		}
		if pn, ok := fs.Lookup(q).(*types.PkgName); ok && !slices.Contains(found, pn.Imported()) {
			found = append(found, pn.Imported())
		}
	}
	if len(found) == 1 {
		return found[0], ""
	}
	// An import path: a dependency, or a package to load (syscall,
	// database/sql) unless q is evidently a typo of an import name.
	deps := v.dependencies()
	if pkg := deps[q]; pkg != nil && len(found) == 0 {
		// A package imported directly is complete. One reached through a
		// dependency holds only what that dependency's export data
		// mentions: load it by its path to see all of it.
		if slices.Contains(v.l.pkg.Types.Imports(), pkg) || v.loaded[q] {
			return pkg, ""
		}
		if full, err := v.importPackage(q); err == nil {
			return full, ""
		}
		return pkg, ""
	}
	// This module's integration packages, by name, without an import:
	// result=httpcircuit.Classify, ignore=grpccircuit.IsClientError.
	if path, ok := integrations[q]; ok && len(found) == 0 {
		pkg, err := v.importPackage(path)
		if err != nil {
			return nil, fmt.Sprintf("cannot load package %s: %v", path, err)
		}
		return pkg, ""
	}
	typo := suggest(q, importNames(scope))
	if len(found) == 0 && (strings.Contains(q, "/") || typo == "") {
		pkg, err := v.importPackage(q)
		if err == nil {
			return pkg, ""
		}
		if strings.Contains(q, "/") {
			return nil, fmt.Sprintf("cannot load package %s: %v", q, err)
		}
	}
	var paths []string
	for path, pkg := range deps {
		if pkg.Name() == q {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	msg := fmt.Sprintf("undefined: %s", q)
	switch {
	case len(found) > 1:
		msg += fmt.Sprintf(" (files of %s import different packages as %s); write the import path instead, such as %s.Name", v.l.pkg.Types.Name(), q, found[0].Path())
	case len(paths) > 0:
		msg += fmt.Sprintf("; this file does not import it: write the import path instead, such as %s.Name", paths[0])
	default:
		if typo != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", typo)
		} else {
			msg += "; this file imports no package of that name: write the import path, such as database/sql.ErrNoRows"
		}
	}
	return nil, msg
}

// integrations are the packages of this module that annotations may name
// by their package name without importing them.
var integrations = map[string]string{
	"httpcircuit": "github.com/purgatory-go/purgatory/httpcircuit",
	"grpccircuit": "github.com/purgatory-go/purgatory/grpccircuit",
}

// dependencies returns the packages the package depends on, directly or
// not, by path.
func (v *validator) dependencies() map[string]*types.Package {
	if v.deps != nil {
		return v.deps
	}
	v.deps = map[string]*types.Package{}
	var walk func(p *types.Package)
	walk = func(p *types.Package) {
		for _, imp := range p.Imports() {
			if v.deps[imp.Path()] == nil {
				v.deps[imp.Path()] = imp
				walk(imp)
			}
		}
	}
	walk(v.l.pkg.Types)
	return v.deps
}

// importPackage loads the package at path, for an exclude entry that names
// a package the annotated package does not depend on.
func (v *validator) importPackage(path string) (*types.Package, error) {
	pc := &packages.Config{Mode: packages.NeedName | packages.NeedTypes, Dir: v.l.dir}
	if len(v.cfg.Tags) > 0 {
		pc.BuildFlags = []string{"-tags=" + strings.Join(v.cfg.Tags, ",")}
	}
	pkgs, err := packages.Load(pc, path)
	if err != nil {
		return nil, err
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("%d packages match", len(pkgs))
	}
	p := pkgs[0]
	if len(p.Errors) > 0 {
		return nil, errors.New(p.Errors[0].Msg)
	}
	if p.Types == nil || p.Types.Scope() == nil {
		return nil, errors.New("no type information")
	}
	if !canImport(v.l.pkg.PkgPath, path) {
		return nil, fmt.Errorf("it is internal to another tree, which %s cannot import", v.l.pkg.PkgPath)
	}
	v.deps[path] = p.Types
	v.loaded[path] = true
	return p.Types, nil
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
