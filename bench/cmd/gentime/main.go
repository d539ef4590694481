// Command gentime times code generators on one synthetic package of many
// interfaces: purgatorygen (this repository's), mockgen in source mode and,
// when it is installed, gowrap with its circuitbreaker template.
//
// It writes the package to a temporary directory, runs each tool as a
// whole process -runs times and prints the median wall time of each as a
// Markdown table, then the raw timings. Every output is built with
// `go build` once (not timed) to show the tools did the whole job.
//
// Usage (from bench/):
//
//	go run ./cmd/gentime [-interfaces 300] [-methods 10] [-runs 5]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("gentime: ")
	interfaces := flag.Int("interfaces", 300, "interfaces in the synthetic package")
	methods := flag.Int("methods", 10, "methods per interface")
	runs := flag.Int("runs", 5, "whole-process runs per tool")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	only := flag.String("tools", "purgatorygen,mockgen,gowrap", "comma list of the tools to time")
	flag.Parse()

	repo, err := repoRoot()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "gentime-")
	if err != nil {
		log.Fatal(err)
	}
	if *keep {
		log.Printf("working in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	want := strings.Split(*only, ",")
	bin := filepath.Join(dir, "bin")
	purgatorygen := filepath.Join(bin, "purgatorygen")
	if slices.Contains(want, "purgatorygen") {
		if err := run(repo, nil, "go", "build", "-o", purgatorygen, "./cmd/purgatorygen"); err != nil {
			log.Fatalf("building purgatorygen: %v", err)
		}
	}

	pkg := filepath.Join(dir, "synth")
	if err := writePackage(pkg, repo, *interfaces, *methods); err != nil {
		log.Fatal(err)
	}

	tools := []tool{
		{
			name: "purgatorygen",
			cmd:  "purgatorygen (one run for the package)",
			args: [][]string{{purgatorygen}},
			out:  []string{"purgatory_gen.go"},
		},
		{
			name: "mockgen",
			cmd:  "mockgen -source=api.go (one run for the file)",
			args: [][]string{{"mockgen", "-source=api.go", "-destination=mock_gen.go", "-package=synth"}},
			out:  []string{"mock_gen.go"},
		},
	}
	if path, err := exec.LookPath("gowrap"); err == nil && slices.Contains(want, "gowrap") {
		// gowrap generates one decorator per run and has no mode for a
		// whole package: one run of the tool is one process per interface.
		g := tool{name: "gowrap", cmd: fmt.Sprintf("gowrap gen -t circuitbreaker (one process per interface, %d in sequence)", *interfaces)}
		for i := range *interfaces {
			out := fmt.Sprintf("gowrap_%03d_gen.go", i)
			g.args = append(g.args, []string{path, "gen", "-g", "-p", ".", "-i", ifaceName(i), "-t", "circuitbreaker", "-o", out})
			g.out = append(g.out, out)
		}
		tools = append(tools, g)
	} else if slices.Contains(want, "gowrap") {
		log.Printf("gowrap is not installed: left out")
	}
	tools = slices.DeleteFunc(tools, func(t tool) bool { return !slices.Contains(want, t.name) })

	for i := range tools {
		t := &tools[i]
		for r := range *runs {
			removeOutputs(pkg, t.out)
			start := time.Now()
			for _, a := range t.args {
				if err := run(pkg, []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}, a[0], a[1:]...); err != nil {
					log.Fatalf("%s run %d: %v", t.name, r+1, err)
				}
			}
			t.times = append(t.times, time.Since(start))
		}
		if err := run(pkg, []string{"GOFLAGS=-mod=mod"}, "go", "build", "./..."); err != nil {
			log.Fatalf("%s output does not build: %v", t.name, err)
		}
		t.lines = countLines(pkg, t.out)
		removeOutputs(pkg, t.out)
	}

	fmt.Printf("Synthetic package: %d interfaces x %d methods (%d methods), median of %d whole-process runs each.\n\n",
		*interfaces, *methods, *interfaces**methods, *runs)
	fmt.Println("| tool | what one run is | median | lines written |")
	fmt.Println("| --- | --- | ---: | ---: |")
	for _, t := range tools {
		fmt.Printf("| %s | %s | %s | %d |\n", t.name, t.cmd, median(t.times).Round(time.Millisecond), t.lines)
	}
	fmt.Println()
	for _, t := range tools {
		var s []string
		for _, d := range t.times {
			s = append(s, d.Round(time.Millisecond).String())
		}
		fmt.Printf("raw %s: %s\n", t.name, strings.Join(s, " "))
	}
}

type tool struct {
	name  string
	cmd   string
	args  [][]string // processes making up one run, in sequence
	out   []string   // files one run writes
	times []time.Duration
	lines int
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

func removeOutputs(dir string, files []string) {
	for _, f := range files {
		_ = os.Remove(filepath.Join(dir, f))
	}
}

func countLines(dir string, files []string) int {
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			log.Fatalf("reading output: %v", err)
		}
		n += bytes.Count(b, []byte("\n"))
	}
	return n
}

// repoRoot finds the purgatory module root: the parent of the bench module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/purgatory-go/purgatory\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("run from inside the purgatory repository")
		}
	}
}

func ifaceName(i int) string { return fmt.Sprintf("Service%03d", i) }

// writePackage writes module synth: one file api.go declaring n annotated
// interfaces of m methods each, with a mix of signatures, and a go.mod that
// points the purgatory runtime at the checkout so the output builds.
func writePackage(dir, repo string, n, m int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	gomod := fmt.Sprintf(`module synth

go 1.24.0

require (
	github.com/purgatory-go/purgatory v0.0.0-00010101000000-000000000000
	go.uber.org/mock v0.6.0
)

replace github.com/purgatory-go/purgatory => %s
`, repo)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(`// Package synth is a synthetic package for timing code generators.
package synth

import (
	"context"
	"io"
	"time"
)

// Item is a value the services return.
type Item struct {
	ID      string
	Created time.Time
}

`)
	for i := range n {
		fmt.Fprintf(&b, "// %s is synthetic interface %d.\n//\n//purgatory:circuit threshold=5 ttl=30s\ntype %s interface {\n", ifaceName(i), i, ifaceName(i))
		for j := range m {
			fmt.Fprintf(&b, "\t%s\n", signature(j))
		}
		b.WriteString("}\n\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "api.go"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// go.sum for the generated code's imports: mockgen's runtime and the
	// purgatory runtime (which needs none).
	return run(dir, []string{"GOFLAGS=-mod=mod"}, "go", "mod", "download", "go.uber.org/mock")
}

// signature returns method j's signature; the mix covers context first,
// values and pointers, slices, maps, variadics, several results and a
// method without an error result.
func signature(j int) string {
	switch j % 10 {
	case 0:
		return fmt.Sprintf("Get%d(ctx context.Context, id string) (*Item, error)", j)
	case 1:
		return fmt.Sprintf("List%d(ctx context.Context, limit, offset int) ([]Item, error)", j)
	case 2:
		return fmt.Sprintf("Put%d(ctx context.Context, item *Item) error", j)
	case 3:
		return fmt.Sprintf("Delete%d(ctx context.Context, ids ...string) (int, error)", j)
	case 4:
		return fmt.Sprintf("Stream%d(ctx context.Context, w io.Writer) (int64, error)", j)
	case 5:
		return fmt.Sprintf("Index%d(ctx context.Context) (map[string]Item, error)", j)
	case 6:
		return fmt.Sprintf("Touch%d(id string, at time.Time) error", j)
	case 7:
		return fmt.Sprintf("Lookup%d(ctx context.Context, key string) (Item, bool, error)", j)
	case 8:
		return fmt.Sprintf("Ping%d() error", j)
	default:
		return fmt.Sprintf("Name%d() string", j)
	}
}
