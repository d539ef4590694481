// Command purgatorygen writes circuit-breaker wrappers for the interfaces
// annotated with //purgatory:circuit in Go packages.
//
// Usage:
//
//	purgatorygen [flags] [packages]
//
// With no packages it reads the package in the current directory, which is
// what go generate runs it in. For each package that has annotated
// interfaces it writes one file, purgatory_gen.go by default.
//
// Flags:
//
//	-o name      output file name in each package directory (default purgatory_gen.go;
//	             with -tags, see below)
//	-type list   comma-separated interface names to restrict generation to
//	-tags list   comma-separated build tags, as for go build. In a package
//	             with files that only the tags bring in (//go:build custom),
//	             the wrappers of their interfaces go to a file of their own,
//	             purgatory_<tags>_gen.go unless -o says otherwise, under the
//	             same build constraint; those of the other files are the
//	             untagged run's. A build without the tags, and -check
//	             without them, leave that file alone.
//	-check       write nothing; exit 1 and name the stale files when
//	             regenerating would change them
//	-version     print the version and exit
//
// Warnings (methods of an annotated interface forwarded without a breaker
// because they have no error result; guarded methods returning a status,
// such as an *http.Response, without result=) go to standard error as
// "file:line:col: warning: message" and do not change the exit status.
//
// Under go generate ($GOFILE set), a package whose last annotation was
// removed keeps an empty generated file (header and package clause) instead
// of losing it: go generate may be about to read it.
//
// Exit status: 0 on success, 1 when the packages or their annotations have
// errors (reported as file:line:col: message; nothing is written) or when
// -check finds stale files, 2 on a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/purgatory-go/purgatory/generator"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("purgatorygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "", "output file `name` in each package directory (default "+generator.DefaultOutput+
		"; with -tags, purgatory_<tags>_gen.go in a package with files only the tags bring in)")
	typeList := fs.String("type", "", "comma-separated interface `names` to restrict generation to")
	tags := fs.String("tags", "", "comma-separated build `tags`")
	check := fs.Bool("check", false, "write nothing; exit 1 and name the stale files when regenerating would change them")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: purgatorygen [flags] [packages]\n\nWrites circuit-breaker wrappers for interfaces annotated with //purgatory:circuit.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintf(stdout, "purgatorygen %s\n", generator.Version)
		return 0
	}
	if *output != "" && (strings.ContainsAny(*output, `/\`) || !strings.HasSuffix(*output, ".go") || strings.HasSuffix(*output, "_test.go")) {
		fmt.Fprintf(stderr, "purgatorygen: -o %q: want a .go file name (not _test.go, not a path)\n", *output)
		fs.Usage()
		return 2
	}
	cfg := generator.Config{
		Patterns: fs.Args(), Output: *output, Types: splitList(*typeList), Tags: splitList(*tags),
		// Under go generate, a package's last annotation going must not
		// remove a file that go generate is about to read.
		KeepEmpty: os.Getenv("GOFILE") != "",
		Warn:      func(w *generator.Error) { fmt.Fprintf(stderr, "%s: warning: %s\n", locus(w), w.Msg) },
	}
	if *check {
		stale, err := generator.Check(cfg)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		for _, f := range stale {
			fmt.Fprintf(stderr, "purgatorygen: %s is stale; run go generate\n", f)
		}
		if len(stale) > 0 {
			return 1
		}
		return 0
	}
	files, err := generator.Generate(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := generator.Write(files); err != nil {
		fmt.Fprintf(stderr, "purgatorygen: %v\n", err)
		return 1
	}
	return 0
}

// locus returns the "file:line:col" of e.
func locus(e *generator.Error) string {
	s := e.Error()
	return strings.TrimSuffix(s[:len(s)-len(e.Msg)], ": ")
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
