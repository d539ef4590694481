// Command report turns the raw output of the bench module's benchmarks into
// the results section of bench/README.md (a Markdown table per scenario,
// medians of every sample) and a chart, chart.svg, with one panel per
// scenario on a logarithmic time axis.
//
// Usage (from bench/, see run.sh):
//
//	go run ./cmd/report -bench results/bench.txt -readme README.md -svg chart.svg \
//		-include results/machine.md,results/gentime.md,results/benchstat.md
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

const (
	beginMarker = "<!-- results:begin (written by cmd/report; edit outside these markers) -->"
	endMarker   = "<!-- results:end -->"
	reference   = "purgatory-generated"
	floor       = "direct"
)

// scenarios in the order they are reported, with the benchmark name and
// GOMAXPROCS suffix ("" for -cpu 1) each panel shows.
var scenarios = []struct {
	Title, Name, Procs, About string
}{
	{"ClosedSuccess", "ClosedSuccess", "", "a successful call through a closed circuit, one goroutine"},
	{"ClosedSuccessParallel, -cpu 1", "ClosedSuccessParallel", "", "successful calls through one closed circuit with b.RunParallel, GOMAXPROCS=1"},
	{"ClosedSuccessParallel, -cpu 2", "ClosedSuccessParallel", "2", "successful calls through one closed circuit with b.RunParallel, GOMAXPROCS=2 (ns/op is wall time per call over both goroutines)"},
	{"OpenReject", "OpenReject", "", "a call rejected by an open circuit"},
	{"HalfOpenReject", "HalfOpenReject", "", "a call rejected by a half-open circuit whose single trial slot is taken by a call that has not returned"},
	{"Mixed", "Mixed", "", "a closed circuit where every 10th call fails (never 5 in a row)"},
	{"Alternating", "Alternating", "", "a closed circuit where every other call fails, a failure first (never 5 in a row): the failure path"},
	{"RateWindow", "RateWindow", "", "a successful call through a closed failure-rate circuit (opens at 50% failures over 10 s once 20 calls were seen), one goroutine"},
	{"RateWindowParallel, -cpu 1", "RateWindowParallel", "", "successful calls through one closed failure-rate circuit with b.RunParallel, GOMAXPROCS=1"},
	{"RateWindowParallel, -cpu 2", "RateWindowParallel", "2", "successful calls through one closed failure-rate circuit with b.RunParallel, GOMAXPROCS=2 (ns/op is wall time per call over both goroutines)"},
}

// key identifies one benchmark: scenario name, contender, procs suffix.
type key struct{ name, contender, procs string }

type samples struct{ ns, bytes, allocs []float64 }

type result struct {
	ns, bytes, allocs float64
	n                 int
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("report: ")
	benchFile := flag.String("bench", "results/bench.txt", "raw `go test -bench` output")
	readme := flag.String("readme", "README.md", "README whose results section is rewritten")
	svgFile := flag.String("svg", "chart.svg", "chart to write")
	include := flag.String("include", "", "comma list of Markdown files appended to the results section")
	flag.Parse()

	f, err := os.Open(*benchFile)
	if err != nil {
		log.Fatal(err)
	}
	data, order, err := parse(f)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	if len(data) == 0 {
		log.Fatalf("%s: no benchmark results", *benchFile)
	}

	var md bytes.Buffer
	writeTables(&md, data, order)
	for _, name := range strings.Split(*include, ",") {
		if name == "" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			log.Fatal(err)
		}
		md.WriteString("\n")
		md.Write(b)
	}
	if err := replaceSection(*readme, md.Bytes()); err != nil {
		log.Fatal(err)
	}

	var svg bytes.Buffer
	writeSVG(&svg, data, order)
	if err := os.WriteFile(*svgFile, svg.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// parse reads benchmark lines such as
//
//	BenchmarkMixed/gobreaker-2   1487776   159.2 ns/op   0 B/op   0 allocs/op
//
// and returns the medians by benchmark and the contenders in the order
// they first appear.
func parse(r io.Reader) (map[key]result, []string, error) {
	raw := map[key]*samples{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name, contender, ok := strings.Cut(strings.TrimPrefix(fields[0], "Benchmark"), "/")
		if !ok {
			continue
		}
		procs := ""
		if i := strings.LastIndexByte(contender, '-'); i >= 0 {
			if _, err := strconv.Atoi(contender[i+1:]); err == nil {
				contender, procs = contender[:i], contender[i+1:]
			}
		}
		k := key{name, contender, procs}
		s := raw[k]
		if s == nil {
			s = &samples{}
			raw[k] = s
		}
		if !slices.Contains(order, contender) {
			order = append(order, contender)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%q: %v", sc.Text(), err)
			}
			switch fields[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	out := make(map[key]result, len(raw))
	for k, s := range raw {
		out[k] = result{ns: median(s.ns), bytes: median(s.bytes), allocs: median(s.allocs), n: len(s.ns)}
	}
	return out, order, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rows returns the scenario's results in contender order.
func rows(data map[key]result, order []string, name, procs string) (names []string, rs []result) {
	for _, c := range order {
		if r, ok := data[key{name, c, procs}]; ok {
			names = append(names, c)
			rs = append(rs, r)
		}
	}
	return names, rs
}

func writeTables(w io.Writer, data map[key]result, order []string) {
	for _, sc := range scenarios {
		names, rs := rows(data, order, sc.Name, sc.Procs)
		if len(names) == 0 {
			continue
		}
		ref, hasRef := data[key{sc.Name, reference, sc.Procs}]
		best := -1
		for i, c := range names {
			if c != floor && (best < 0 || rs[i].ns < rs[best].ns) {
				best = i
			}
		}
		fmt.Fprintf(w, "### %s\n\n%s. Medians of %d runs; **bold**: the fastest breaker.\n\n", sc.Title, upper(sc.About), rs[0].n)
		fmt.Fprintf(w, "| contender | ns/op | B/op | allocs/op | time vs %s |\n| --- | ---: | ---: | ---: | ---: |\n", reference)
		for i, c := range names {
			r := rs[i]
			ns := formatNs(r.ns)
			if i == best {
				ns = "**" + ns + "**"
			}
			ratio := ""
			if hasRef {
				ratio = fmt.Sprintf("%.2f×", r.ns/ref.ns)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", c, ns, formatNum(r.bytes), formatNum(r.allocs), ratio)
		}
		fmt.Fprintln(w)
	}
}

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func formatNs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func formatNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// replaceSection rewrites the part of the README between the markers,
// appending the markers at the end when they are missing.
func replaceSection(path string, section []byte) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	body := append([]byte(beginMarker+"\n\n"), section...)
	body = append(body, []byte(endMarker)...)
	var out []byte
	i := bytes.Index(old, []byte(beginMarker))
	j := bytes.Index(old, []byte(endMarker))
	if i >= 0 && j > i {
		out = append(append(slices.Clone(old[:i]), body...), old[j+len(endMarker):]...)
	} else {
		out = append(append(slices.Clone(old), '\n'), body...)
		out = append(out, '\n')
	}
	return os.WriteFile(path, out, 0o644)
}

// writeSVG draws one panel per scenario: a horizontal bar per contender,
// its length the median ns/op on a log scale.
func writeSVG(w io.Writer, data map[key]result, order []string) {
	const (
		width    = 900
		left     = 170 // contender labels
		right    = 150 // value labels
		barH     = 14
		gap      = 4
		panelTop = 28
		panelGap = 22
		top      = 56
		bottom   = 40
	)
	lo, hi := 1.0, 1.0
	for _, r := range data {
		hi = math.Max(hi, r.ns)
	}
	decades := math.Ceil(math.Log10(hi))
	plotW := float64(width - left - right)
	x := func(ns float64) float64 {
		return left + plotW*math.Log10(math.Max(ns, lo))/decades
	}

	height := top + bottom
	for _, sc := range scenarios {
		names, _ := rows(data, order, sc.Name, sc.Procs)
		if len(names) > 0 {
			height += panelTop + len(names)*(barH+gap) + panelGap
		}
	}

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="16" font-weight="bold">Cost of one call through each circuit breaker (median ns/op, log scale; lower is better)</text>`+"\n", 10)
	fmt.Fprintf(w, `<text x="%d" y="42" fill="#555">Same trivial backend behind every contender; "direct" is the call with no breaker. Purgatory in blue.</text>`+"\n", 10)

	y := top
	for _, sc := range scenarios {
		names, rs := rows(data, order, sc.Name, sc.Procs)
		if len(names) == 0 {
			continue
		}
		fmt.Fprintf(w, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+18, html.EscapeString(sc.Title))
		py := y + panelTop
		ph := len(names) * (barH + gap)
		for d := 0.0; d <= decades; d++ {
			gx := x(math.Pow(10, d))
			fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", gx, py-4, gx, py+ph)
		}
		for i, c := range names {
			by := py + i*(barH+gap)
			fill := "#9e9e9e"
			switch {
			case strings.HasPrefix(c, "purgatory"):
				fill = "#1f6feb"
			case c == floor:
				fill = "#2da44e"
			}
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, by+barH-3, html.EscapeString(c))
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, by, x(rs[i].ns)-left, barH, fill)
			label := formatNs(rs[i].ns) + " ns"
			if rs[i].allocs > 0 {
				label += fmt.Sprintf(", %s allocs", formatNum(rs[i].allocs))
			}
			fmt.Fprintf(w, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", x(rs[i].ns)+4, by+barH-3, html.EscapeString(label))
		}
		y = py + ph + panelGap
	}
	for d := 0.0; d <= decades; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(v), y+4, tickLabel(v))
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle" fill="#555">ns/op</text>`+"\n", left+int(plotW/2), y+22)
	fmt.Fprintln(w, "</svg>")
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return formatNum(v/1e6) + " ms"
	case v >= 1e3:
		return formatNum(v/1e3) + " µs"
	}
	return formatNum(v) + " ns"
}
