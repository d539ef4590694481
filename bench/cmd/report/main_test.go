package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
BenchmarkMixed/gobreaker 	1487776	       159.2 ns/op	       0 B/op	       0 allocs/op
BenchmarkMixed/gobreaker 	1487776	       161.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkMixed/gobreaker 	1487776	       170.0 ns/op	       8 B/op	       1 allocs/op
BenchmarkClosedSuccessParallel/purgatory-generated-2 	29592103	         9.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSuccessParallel/purgatory-generated-2 	29592103	         9.3 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSuccessParallel/go-resiliency 	29592103	  11 ns/op	       0 B/op	       0 allocs/op
BenchmarkRateWindowParallel/purgatory-generated-2 	29592103	  12.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkRateWindowParallel/gobreaker-2 	2959210	  140 ns/op	       0 B/op	       0 allocs/op
BenchmarkHalfOpenReject/purgatory-do 	29592103	  5.5 ns/op	       0 B/op	       0 allocs/op
PASS
`

func TestParseMedians(t *testing.T) {
	data, order, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	assert.Equal(t, []string{"gobreaker", "purgatory-generated", "go-resiliency", "purgatory-do"}, order)
	assert.Equal(t, result{ns: 161, bytes: 0, allocs: 0, n: 3}, data[key{"Mixed", "gobreaker", ""}])
	assert.InDelta(t, 9.4, data[key{"ClosedSuccessParallel", "purgatory-generated", "2"}].ns, 1e-9)
	_, ok := data[key{"ClosedSuccessParallel", "purgatory-generated", ""}]
	assert.False(t, ok, "the -2 suffix is GOMAXPROCS, not part of the contender")
}

func TestParseRejectsBadNumber(t *testing.T) {
	_, _, err := parse(strings.NewReader("BenchmarkMixed/x 10 abc ns/op\n"))
	assert.Error(t, err)
}

func TestReplaceSectionKeepsProse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	require.NoError(t, os.WriteFile(path, []byte("# Title\n\nprose\n"), 0o644))
	require.NoError(t, replaceSection(path, []byte("first\n")))
	require.NoError(t, replaceSection(path, []byte("second\n")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := string(b)
	assert.True(t, strings.HasPrefix(s, "# Title\n\nprose\n"))
	assert.Contains(t, s, "second\n")
	assert.NotContains(t, s, "first")
	assert.Equal(t, 1, strings.Count(s, beginMarker))
}

func TestTablesAndChart(t *testing.T) {
	data, order, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	var md, svg bytes.Buffer
	writeTables(&md, data, order)
	assert.Contains(t, md.String(), "### Mixed")
	assert.Contains(t, md.String(), "| gobreaker | **161** | 0 | 0 |")
	assert.Contains(t, md.String(), "| purgatory-generated | **9.40** | 0 | 0 | 1.00× |")
	assert.Contains(t, md.String(), "### RateWindowParallel, -cpu 2")
	assert.Contains(t, md.String(), "| gobreaker | 140 | 0 | 0 | 11.20× |")
	assert.Contains(t, md.String(), "### HalfOpenReject")
	assert.NotContains(t, md.String(), "### RateWindowParallel, -cpu 1", "no table without results")
	writeSVG(&svg, data, order)
	assert.True(t, strings.HasPrefix(svg.String(), "<svg "))
	assert.Contains(t, svg.String(), "gobreaker")
}
