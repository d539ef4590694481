package generator

// Naming: import names, and identifiers that collide with nothing the generated code uses.

import (
	"go/token"
	"go/types"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
			if mm.circuit != nil && mm.ctx.nilable {
				usesContext = true // var ctx context.Context
			}
		}
		for _, c := range im.circuits {
			if c.ttl > 0 || c.window > 0 || c.slow > 0 || c.maxTTL > 0 {
				usesTime = true
			}
			for _, x := range slices.Concat(c.excludes, c.ignores) {
				if x.pkg != nil {
					pkgs[importPath(x.pkg.Path())] = x.pkg
				}
			}
		}
		for _, mm := range im.methods {
			if mm.result != nil && mm.result.obj.Pkg() != nil {
				pkgs[importPath(mm.result.obj.Pkg().Path())] = mm.result.obj.Pkg()
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
	free := func(name string) bool { return !reserved[name] && !taken[name] && !token.IsKeyword(name) }
	// claim gives package path p the first free name of cands, or the last
	// one numbered.
	claim := func(p string, cands []string) {
		cand := ""
		for _, c := range cands {
			if free(c) {
				cand = c
				break
			}
		}
		for i := 2; cand == ""; i++ {
			if c := cands[len(cands)-1] + strconv.Itoa(i); free(c) {
				cand = c
			}
		}
		taken[cand] = true
		e.imports[p] = cand
	}
	claim(RuntimePath, []string{"purgatory", "purgatoryrt"})
	if usesContext {
		claim("context", []string{"context"})
	}
	if usesTime {
		claim("time", []string{"time"})
	}
	paths := make([]string, 0, len(pkgs))
	for p := range pkgs {
		if _, done := e.imports[p]; !done {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	// Packages that share a name are all named after their paths (corev1,
	// policyv1), so that none keeps a bare name the reader cannot place.
	shared := map[string]int{}
	for _, p := range paths {
		shared[pkgs[p].Name()]++
	}
	for _, p := range paths {
		name := pkgs[p].Name()
		cands := append([]string{name}, pathNames(p, name)...)
		if shared[name] > 1 && len(cands) > 1 {
			cands = cands[1:]
		}
		claim(p, cands)
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

// pathNames returns import names for package path p, named name, taken
// from its path, nearest elements first: k8s.io/api/core/v1 gives corev1,
// apicorev1, k8sioapicorev1.
func pathNames(p, name string) []string {
	var out []string
	elems := strings.Split(p, "/")
	cand := name
	for i := len(elems) - 2; i >= 0; i-- {
		el := sanitize(elems[i])
		if el == "" || el == name && i == len(elems)-2 {
			continue
		}
		cand = el + cand
		out = append(out, cand)
	}
	return out
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
		for _, x := range slices.Concat(c.excludes, c.ignores) {
			if x.pkg == e.m.pkg {
				n[x.name] = true
			}
		}
	}
	for _, mm := range im.methods {
		if mm.result != nil && mm.result.obj.Pkg() == e.m.pkg {
			n[mm.result.obj.Name()] = true
		}
	}
	return n
}

// markLocal takes the name of t when it is a package-scope type of the
// generated package.
func (e *emitter) markLocal(n namer, t types.Type) {
	if obj := typeName(t); obj != nil && obj.Pkg() == e.m.pkg {
		n[obj.Name()] = true
	}
}

// wrapperNames returns the names of the wrapper type and constructor of
// interface name: FooCircuit and NewFooCircuit, or fooCircuit and
// newFooCircuit for an unexported foo.
func wrapperNames(name string) (wrapper, ctor string) {
	wrapper = name + "Circuit"
	if token.IsExported(name) {
		return wrapper, "New" + wrapper
	}
	r, size := utf8.DecodeRuneInString(name)
	return wrapper, "new" + string(unicode.ToUpper(r)) + name[size:] + "Circuit"
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
