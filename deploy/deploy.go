// Package deploy carries the project's Kubernetes manifests (the kustomize
// base and the before and after overlays) inside the binary, so the lab's
// default experiment runs from any directory and writes the exact
// manifests it applied next to its results.
package deploy

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Manifests holds base/, overlays/ and lab/ (the lab's Karpenter NodePool)
// as they are in the repository.
//
//go:embed base overlays lab
var Manifests embed.FS

// WriteTo copies the embedded manifests into dir (dir/base,
// dir/overlays/before, dir/overlays/after, dir/lab).
func WriteTo(dir string) error {
	return fs.WalkDir(Manifests, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := Manifests.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", target, err)
		}
		return nil
	})
}
