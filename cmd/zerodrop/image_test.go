package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageBuildUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "build"}, "-o/--output-path"},
		{[]string{"image", "build", "-o", "x.tar", "--platform", "linux/sparc"}, "--platform"},
		{[]string{"image", "build", "-o", "x.tar", "--platform", "windows/amd64"}, "--platform"},
		{[]string{"image", "build", "-o", "x.tar", "--binary", "linux/amd64"}, "--binary"},
		{[]string{"image", "build", "-o", "x.tar", "--platform", "linux/amd64", "--binary", "linux/arm64=/bin/true"}, "--binary"},
		{[]string{"image", "build", "-o", "x.tar", "--format", "yaml"}, "--format"},
	} {
		r := zerodrop(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("zerodrop %v: exit %d, stderr %q; want 2 naming %s", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// A prebuilt binary skips the compiler: the command only assembles and
// writes the layout (the full build is tested in package ociimage).
func TestImageBuildWithPrebuiltBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "zerodrop")
	if err := os.WriteFile(bin, []byte("not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "oci")
	r := zerodrop(t, "", "image", "build", "-o", out, "--platform", "linux/amd64", "--binary", "linux/amd64="+bin, "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var res imageBuildResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if !strings.HasPrefix(res.Digest, "sha256:") || len(res.Platforms) != 1 || res.Platforms["linux/amd64"] == "" {
		t.Errorf("result %+v", res)
	}
	if _, err := os.Stat(filepath.Join(out, "index.json")); err != nil {
		t.Errorf("no OCI layout written: %v", err)
	}
	// The directory is not empty now: a second build refuses it.
	if r := zerodrop(t, "", "image", "build", "-o", out, "--platform", "linux/amd64", "--binary", "linux/amd64="+bin); r.code != 2 || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("second build into %s: exit %d, stderr %q", out, r.code, r.stderr)
	}
}
