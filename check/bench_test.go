package check

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"zerodrop.dev/zerodrop/manifest"
)

// corpus1000 builds 1,000 application manifests (each a multi-document
// file: Namespace, Deployment or Rollout, Services, Ingress, PDB) from the
// rule test files, renamed so every application is distinct.
func corpus1000(b *testing.B) []manifest.Input {
	files, err := filepath.Glob("testdata/rules/*.yaml")
	if err != nil || len(files) == 0 {
		b.Fatalf("no rule manifests: %v", err)
	}
	var inputs []manifest.Input
	for i := 0; len(inputs) < 1000; i++ {
		f := files[i%len(files)]
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		s := strings.ReplaceAll(string(data), "shop", fmt.Sprintf("shop%d", i))
		inputs = append(inputs, manifest.Input{Name: fmt.Sprintf("app%d.yaml", i), Data: []byte(s)})
	}
	return inputs
}

// BenchmarkCheck1000 reads and checks 1,000 manifests per op (target:
// under 1 s per op).
func BenchmarkCheck1000(b *testing.B) {
	inputs := corpus1000(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := Run(manifest.Parse(inputs...), DefaultConfig())
		if len(r.Workloads) != 1000 {
			b.Fatalf("checked %d workloads", len(r.Workloads))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/1000-manifests")
}
