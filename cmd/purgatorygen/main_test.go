package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// module writes a module with no dependencies, makes it the working
// directory and returns it.
func module(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.24\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m.go"), []byte(src), 0o644))
	t.Chdir(dir)
	return dir
}

const good = `package m

import "context"

// Svc is a service.
//
//purgatory:circuit
type Svc interface {
	Do(ctx context.Context) error
}
`

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("-version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "purgatorygen v0.1.0\n", out)
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := runCLI("-nope")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "flag provided but not defined: -nope")
	assert.Contains(t, errOut, "usage: purgatorygen [flags] [packages]")

	code, _, errOut = runCLI("-o", "dir/out.go")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `-o "dir/out.go": want a .go file name`)

	code, _, _ = runCLI("-o", "out_test.go")
	assert.Equal(t, 2, code)
}

func TestGenerateAndCheck(t *testing.T) {
	dir := module(t, good)
	out := filepath.Join(dir, "purgatory_gen.go")

	code, _, errOut := runCLI("-check")
	assert.Equal(t, 1, code, "missing output is stale")
	assert.Equal(t, "purgatorygen: purgatory_gen.go is stale; run go generate\n", errOut)
	assert.NoFileExists(t, out, "-check writes nothing")

	code, _, errOut = runCLI()
	require.Equal(t, 0, code, errOut)
	assert.FileExists(t, out)

	code, _, errOut = runCLI("-check", ".")
	assert.Equal(t, 0, code, errOut)

	// The interface changes: the file is stale until regenerated.
	src := good[:len(good)-2] + "\tUndo() error\n}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m.go"), []byte(src), 0o644))
	code, _, errOut = runCLI("-check")
	assert.Equal(t, 1, code)
	assert.Equal(t, "purgatorygen: purgatory_gen.go is stale; run go generate\n", errOut)
	code, _, errOut = runCLI()
	require.Equal(t, 0, code, errOut)
	code, _, _ = runCLI("-check")
	assert.Equal(t, 0, code)
}

func TestOutputFlag(t *testing.T) {
	dir := module(t, good)
	code, _, errOut := runCLI("-o", "breakers_gen.go")
	require.Equal(t, 0, code, errOut)
	assert.FileExists(t, filepath.Join(dir, "breakers_gen.go"))
	assert.NoFileExists(t, filepath.Join(dir, "purgatory_gen.go"))
}

func TestGenerationErrorWritesNothing(t *testing.T) {
	dir := module(t, `package m

//purgatory:circuit treshold=2
type Svc interface {
	Do() error
}
`)
	code, _, errOut := runCLI()
	assert.Equal(t, 1, code)
	assert.Equal(t, "m.go:3:21: unknown key \"treshold\" (did you mean \"threshold\"?)\n", errOut)
	assert.NoFileExists(t, filepath.Join(dir, "purgatory_gen.go"))
}
