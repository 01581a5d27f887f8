package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckUsage: values are never silently ignored, positional files work
// like -f, and empty input is an error.
func TestCheckUsage(t *testing.T) {
	r := zerodrop(t, "", "check", "--color", "pink", "-f", "check/testdata/rules/ZD001-fixed.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "--color") {
		t.Errorf("--color pink: exit %d, stderr %q; want 2 naming the flag", r.code, r.stderr)
	}
	for _, c := range []string{"never", "always", "auto"} {
		if r := zerodrop(t, "", "check", "--color", c, "check/testdata/rules/ZD001-fixed.yaml"); r.code != 0 {
			t.Errorf("--color %s with a positional file: exit %d\n%s", c, r.code, r.stderr)
		}
	}
	r = zerodrop(t, "", "check", "-o", "yaml", "-f", "check/testdata/rules/ZD001-fixed.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "--output") {
		t.Errorf("-o yaml: exit %d, stderr %q; want 2 naming the flag", r.code, r.stderr)
	}
	r = zerodrop(t, "", "check", "--max-request-duration", "-1s", "-f", "check/testdata/rules/ZD001-fixed.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "--max-request-duration") {
		t.Errorf("negative duration: exit %d, stderr %q", r.code, r.stderr)
	}
	// Positional: same verdict as -f.
	pos := zerodrop(t, "", "check", "manifest/testdata/seed/before.yaml")
	flag := zerodrop(t, "", "check", "-f", "manifest/testdata/seed/before.yaml")
	if pos.code != 1 || pos.stdout != flag.stdout {
		t.Errorf("positional file: exit %d, output differs from -f: %v", pos.code, pos.stdout != flag.stdout)
	}
	// Empty inputs: an empty file, a comments-only file, an empty
	// kustomize build.
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yaml")
	comments := filepath.Join(dir, "comments.yaml")
	kdir := filepath.Join(dir, "k")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(comments, []byte("# nothing here\n---\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kdir, "kustomization.yaml"), []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: a-\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-f", empty}, {comments}, {"-k", kdir}} {
		r := zerodrop(t, "", append([]string{"check"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "no Kubernetes objects") {
			t.Errorf("check %v: exit %d, stderr %q; want 2, no objects", args, r.code, r.stderr)
		}
	}
	// The README's demo checks one setup per command; both files at once
	// are reported as duplicates, not merged.
	r = zerodrop(t, "", "check", "-f", "manifest/testdata/seed/")
	if r.code != 1 || !strings.Contains(r.stdout, "ZD027") {
		t.Errorf("check on the seed directory: exit %d; want the duplicate objects reported (ZD027)\n%s", r.code, r.stdout)
	}
}
