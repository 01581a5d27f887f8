package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Sources names what to read, kubectl style.
type Sources struct {
	// Files are files, directories (their *.yaml, *.yml and *.json files,
	// not recursive) or "-" for Stdin.
	Files []string
	// Kustomize are kustomization directories, built with kustomize.
	Kustomize []string
	// Stdin is read for "-".
	Stdin io.Reader
}

// maxInput bounds one input (64 MiB) so a stray file cannot exhaust memory.
const maxInput = 64 << 20

// KustomizeSuffix ends the name of a kustomize build's input.
const KustomizeSuffix = " (kustomize build)"

// ErrNoObjects is returned (wrapped, naming the input) by Load when an
// input holds no document at all: an empty file, a file of comments only,
// or a kustomize build that produced nothing. Checking nothing is not a
// pass.
var ErrNoObjects = errors.New("no Kubernetes objects in the input")

// Load reads the sources and parses them into a Model. It returns an error
// when a source cannot be read at all (missing file, failed kustomize
// build) or holds no object (ErrNoObjects); problems inside the manifests
// are Model.Diagnostics.
func Load(ctx context.Context, src Sources) (*Model, error) {
	inputs, err := ReadSources(ctx, src)
	if err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("reading manifests: %w", ErrNoObjects)
	}
	for _, in := range inputs {
		if !HasDocuments(in.Data) {
			return nil, fmt.Errorf("reading manifest %s: %w (empty, or comments only)", in.Name, ErrNoObjects)
		}
	}
	return Parse(inputs...), nil
}

// HasDocuments reports whether a YAML stream holds at least one document
// that is not empty. A stream that is not valid YAML counts as holding
// documents: Parse reports where it breaks.
func HasDocuments(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			return true
		}
		root := &n
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		if root.Kind == yaml.ScalarNode && (root.Tag == "!!null" || root.Value == "") {
			continue
		}
		return true
	}
}

// ReadSources reads the sources into named inputs.
func ReadSources(ctx context.Context, src Sources) ([]Input, error) {
	var inputs []Input
	stdinUsed := false
	for _, f := range src.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if f == "-" {
			if stdinUsed {
				return nil, fmt.Errorf("reading stdin: - given more than once")
			}
			stdinUsed = true
			if src.Stdin == nil {
				return nil, fmt.Errorf("reading stdin: no input")
			}
			data, err := io.ReadAll(io.LimitReader(src.Stdin, maxInput+1))
			if err != nil {
				return nil, fmt.Errorf("reading stdin: %w", err)
			}
			if len(data) > maxInput {
				return nil, fmt.Errorf("reading stdin: larger than %d MiB", maxInput>>20)
			}
			inputs = append(inputs, Input{Name: "<stdin>", Data: data})
			continue
		}
		files, err := expand(f)
		if err != nil {
			return nil, err
		}
		for _, name := range files {
			data, err := readFile(name)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, Input{Name: name, Data: data})
		}
	}
	for _, dir := range src.Kustomize {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in, err := Kustomize(dir)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", name, err)
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("reading manifest %s: larger than %d MiB", name, maxInput>>20)
	}
	return data, nil
}

// expand turns a file or directory argument into file names.
func expand(arg string) ([]string, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if !st.IsDir() {
		return []string{arg}, nil
	}
	entries, err := os.ReadDir(arg)
	if err != nil {
		return nil, fmt.Errorf("reading manifest directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		if base := strings.TrimSuffix(strings.ToLower(name), filepath.Ext(name)); base == "kustomization" {
			continue // a kustomization is not an object; use -k
		}
		out = append(out, filepath.Join(arg, name))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("reading manifest directory %s: no .yaml, .yml or .json files", arg)
	}
	return out, nil
}

// originFS asks kustomize for origin annotations on every object of the
// top kustomization (buildMetadata: [originAnnotations]), so positions
// can point at the source files.
type originFS struct {
	filesys.FileSystem
	dir string
}

// ReadFile adds buildMetadata to the top kustomization file.
func (f originFS) ReadFile(name string) ([]byte, error) {
	data, err := f.FileSystem.ReadFile(name)
	if err != nil {
		return nil, err
	}
	abs, aerr := filepath.Abs(name)
	if aerr != nil || filepath.Dir(abs) != f.dir || !isKustomizationFile(filepath.Base(abs)) || bytes.Contains(data, []byte("buildMetadata")) {
		return data, nil
	}
	out := append(append([]byte(nil), data...), "\nbuildMetadata: [originAnnotations]\n"...)
	return out, nil
}

func isKustomizationFile(base string) bool {
	return base == "kustomization.yaml" || base == "kustomization.yml" || base == "Kustomization"
}

// Kustomize builds a kustomization directory. The input is named
// "DIR (kustomize build)"; its line numbers refer to the built output, and
// Parse maps each object's fields back to its source file through
// kustomize's origin annotations where the value there is the one built.
func Kustomize(dir string) (Input, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Input{}, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	res, err := k.Run(originFS{FileSystem: filesys.MakeFsOnDisk(), dir: abs}, dir)
	if err != nil {
		return Input{}, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	data, err := res.AsYaml()
	if err != nil {
		return Input{}, fmt.Errorf("kustomize build %s: rendering YAML: %w", dir, err)
	}
	return Input{Name: dir + KustomizeSuffix, Data: data, Dir: dir}, nil
}
