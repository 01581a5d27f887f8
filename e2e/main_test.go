package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// zerodropBin is the zerodrop binary TestMain builds once for every test.
// It is set before any test runs and never changed afterwards.
var zerodropBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// binEnv names a prebuilt zerodrop binary to test instead of building one
// (for CI jobs that already built it).
const binEnv = "ZERODROP_E2E_BIN"

func runTests(m *testing.M) int {
	if bin := os.Getenv(binEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s: %v\n", binEnv, err)
			return 1
		}
		zerodropBin = bin
		return m.Run()
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "zerodrop-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: making a directory for the binary:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "zerodrop")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zerodrop")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building zerodrop in %s: %v\n%s", root, err, out)
		return 1
	}
	zerodropBin = bin
	return m.Run()
}

// repoRoot finds the repository root from this file's location (e2e/ sits
// directly under it), so the build does not depend on the working directory.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locating the test source file")
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "cmd", "zerodrop")); err != nil {
		return "", fmt.Errorf("locating the repository root from %s: %w", file, err)
	}
	return root, nil
}
