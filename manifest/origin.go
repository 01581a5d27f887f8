package manifest

import (
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// originAnnotation is what kustomize's buildMetadata: [originAnnotations]
// writes on every built object: the file it came from.
const originAnnotation = "config.kubernetes.io/origin"

// docIndex is one document of a source file.
type docIndex struct {
	kind, name string
	ix         *lineIndex
}

// origin reads the origin annotation of a built object and, when its
// source file holds the object, lets Meta.At point into that file for every
// field whose value there is the one built (a field a patch changed keeps
// pointing at the built output).
func (b *builder) origin(meta *Meta, annotation string) {
	var o struct {
		Path string `yaml:"path"`
		Repo string `yaml:"repo"`
	}
	if err := yaml.Unmarshal([]byte(annotation), &o); err != nil || o.Path == "" || o.Repo != "" {
		return
	}
	file := filepath.Join(b.dir, o.Path)
	docs, ok := b.sources[file]
	if !ok {
		docs = readSourceDocs(file)
		if b.sources == nil {
			b.sources = map[string][]*docIndex{}
		}
		b.sources[file] = docs
	}
	var best *docIndex
	for _, d := range docs {
		if d.kind != meta.Kind {
			continue
		}
		// Name prefixes and suffixes of the kustomization keep the base
		// name inside the built one.
		if d.name == meta.Name || best == nil && d.name != "" && strings.Contains(meta.Name, d.name) {
			best = d
		}
	}
	if best == nil {
		return
	}
	meta.origin = best.ix
	meta.Origin = best.ix.file
	meta.Pos = Pos{File: best.ix.file, Line: best.ix.start}
	delete(meta.Annotations, originAnnotation)
}

// readSourceDocs indexes the documents of a source file; a file that
// cannot be read gives none.
func readSourceDocs(file string) []*docIndex {
	data, err := os.ReadFile(file)
	if err != nil || len(data) > maxInput {
		return nil
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var out []*docIndex
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return out
		}
		var h struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if n.Decode(&h) != nil {
			continue
		}
		out = append(out, &docIndex{kind: h.Kind, name: h.Metadata.Name, ix: newLineIndex(file, &n)})
	}
}
