// Package testbin finds the programs the tests run against (redis-server,
// chromium, promtool, prometheus). Without one, a test is skipped with a
// message saying what to install, or fails when CI=true: CI installs every
// one of them (see .ci/run), so a missing program there is a broken
// machine, not a reason to pass.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Find returns the path of binary (a name looked up in PATH, or a path),
// or an error that says to install Debian's package pkg.
func Find(binary, pkg string) (string, error) {
	path, err := exec.LookPath(binary)
	if err != nil {
		return "", fmt.Errorf("%s not found (%v); install Debian's %s package: apt-get install -y %s", binary, err, pkg, pkg)
	}
	return path, nil
}

// Need returns the path of binary, or skips t without it (fails it when
// CI=true).
func Need(t testing.TB, binary, pkg string) string {
	t.Helper()
	path, err := Find(binary, pkg)
	if err != nil {
		if InCI() {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	return path
}
