package deploy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteToCopiesTheRepositoryFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"base/kustomization.yaml", "base/deployment.yaml", "overlays/before/kustomization.yaml", "overlays/after/kustomization.yaml"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the repository's", f)
		}
	}
}
