package generator

import (
	"go/ast"
	"go/build"
	"go/build/constraint"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/tools/go/packages"
)

// loaded is one package as the loader gives it, with the problems that stop
// generation for it.
type loaded struct {
	pkg  *packages.Package
	dir  string // directory of the package's files
	errs ErrorList
	// gen is the previously generated output file, if the package has one;
	// its type errors are ignored (it is about to be replaced) and its
	// declarations do not count as taken names.
	gen     *ast.File
	genPath string
	// output is the name of the file this run writes in dir.
	output string
	// tagOnly are the files (absolute paths) that a build without
	// Config.Tags leaves out: with tags, only their interfaces are
	// generated (see Config.Tags).
	tagOnly map[string]bool
	// tagged says that the run writes the tagged output of the package:
	// it had tag-only files, its old tagged output counted.
	tagged bool
}

// loadMode is what the generator needs: syntax and types of the target
// packages, export data for their dependencies, and the go command's
// errors about their imports (a missing module).
const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
	packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports

// load loads the packages of cfg with go/packages. _test.go files are not
// loaded. It fails only when the go command does; problems in the packages
// are returned in each loaded.errs with the compiler's messages.
func load(cfg Config) ([]*loaded, error) {
	pkgs, err := loadOnce(cfg, nil)
	if err != nil {
		return nil, err
	}
	// A stale generated file can break the code that uses it ("does not
	// implement", wrong arguments): load again with it emptied, so that
	// such code only misses names this run generates.
	overlay := map[string][]byte{}
	for _, l := range pkgs {
		if l.gen != nil && len(l.errs) > 0 {
			overlay[l.genPath] = []byte(header + "\n\npackage " + l.pkg.Name + "\n")
		}
	}
	if len(overlay) == 0 {
		return pkgs, nil
	}
	return loadOnce(cfg, overlay)
}

// loadOnce is one go/packages load, with the overlay.
func loadOnce(cfg Config, overlay map[string][]byte) ([]*loaded, error) {
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	pc := &packages.Config{Mode: loadMode, Dir: cfg.Dir, Tests: false, Overlay: overlay}
	if len(cfg.Tags) > 0 {
		pc.BuildFlags = []string{"-tags=" + strings.Join(cfg.Tags, ",")}
	}
	pkgs, err := packages.Load(pc, patterns...)
	if err != nil {
		return nil, err
	}
	wildcard := false
	for _, pat := range patterns {
		wildcard = wildcard || strings.Contains(pat, "...")
	}
	var out []*loaded
	for _, p := range pkgs {
		l := &loaded{pkg: p, tagOnly: tagOnlyFiles(p.GoFiles, cfg.Tags)}
		if len(p.GoFiles) > 0 {
			l.dir = filepath.Dir(p.GoFiles[0])
		}
		l.output = cfg.Output
		if l.output == "" {
			l.output = DefaultOutput
			if len(l.tagOnly) > 0 {
				l.output = TaggedOutput(cfg.Tags)
			}
		}
		l.tagged = len(l.tagOnly) > 0
		genPath := ""
		for _, f := range p.Syntax {
			name := p.Fset.Position(f.Package).Filename
			if filepath.Base(name) == l.output && isOurs(f) {
				l.gen = f
				l.genPath = name
				genPath = name
				delete(l.tagOnly, name) // the output of an earlier tagged run
			}
		}
		// The go command says why an import failed ("no required module
		// provides package ...; to add it: go get ..."); the type checker
		// only that it could not import it.
		importErrs := map[string]string{}
		for path, ip := range p.Imports {
			for _, e := range ip.Errors {
				if e.Kind == packages.ListError {
					importErrs[path] = e.Msg
					break
				}
			}
		}
		for _, e := range p.Errors {
			if rest, ok := strings.CutPrefix(e.Msg, "could not import "); ok {
				if path, _, _ := strings.Cut(rest, " "); importErrs[path] != "" {
					e.Msg = importErrs[path]
				}
			}
			if e.Kind == packages.ListError && strings.HasPrefix(e.Msg, "# ") {
				// The compiler's output when go list -export builds the
				// package: the type checker reports the same errors, and
				// those of the old output file must not count.
				continue
			}
			pos := parsePos(e.Pos)
			if genPath != "" && pos.Filename == genPath {
				continue
			}
			pos.Filename = relPath(cfg.Dir, pos.Filename)
			if pos.Filename == "" || pos.Filename == "-" {
				pos.Filename = p.PkgPath
			}
			l.errs = append(l.errs, &Error{Pos: pos, Msg: e.Msg})
		}
		if len(l.errs) == 0 && (p.Types == nil || p.TypesInfo == nil) {
			l.errs = append(l.errs, &Error{Pos: token.Position{Filename: p.PkgPath}, Msg: "no type information"})
		}
		if len(p.GoFiles) == 0 && len(l.errs) == 0 {
			if wildcard {
				continue // a directory of tests only, matched by ./...
			}
			l.errs = append(l.errs, &Error{Pos: token.Position{Filename: p.PkgPath}, Msg: "no Go files"})
		}
		out = append(out, l)
	}
	return out, nil
}

// tagOnlyFiles returns those of files that a build without tags leaves
// out (by their build constraints), when there are tags.
func tagOnlyFiles(files, tags []string) map[string]bool {
	if len(tags) == 0 {
		return nil
	}
	out := map[string]bool{}
	bctx := build.Default
	bctx.BuildTags = nil
	for _, f := range files {
		if ok, err := bctx.MatchFile(filepath.Dir(f), filepath.Base(f)); err == nil && !ok {
			out[f] = true
		}
	}
	return out
}

// buildConstraint returns the //go:build expression of f, or nil.
func buildConstraint(f *ast.File) constraint.Expr {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if constraint.IsGoBuild(c.Text) {
				if x, err := constraint.Parse(c.Text); err == nil {
					return x
				}
			}
		}
	}
	return nil
}

// isOurs reports whether f was written by purgatorygen.
func isOurs(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if c.Text == header {
				return true
			}
		}
	}
	return false
}

// parsePos parses the "file:line:col" (or "file:line", "file") positions
// go/packages gives errors.
func parsePos(s string) token.Position {
	var p token.Position
	rest := s
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		if n, err := strconv.Atoi(rest[i+1:]); err == nil {
			rest = rest[:i]
			if j := strings.LastIndexByte(rest, ':'); j >= 0 {
				if m, err := strconv.Atoi(rest[j+1:]); err == nil {
					p.Line, p.Column = m, n
					rest = rest[:j]
				} else {
					p.Line = n
				}
			} else {
				p.Line = n
			}
		}
	}
	p.Filename = rest
	return p
}
