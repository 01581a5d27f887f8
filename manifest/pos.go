package manifest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Pos is where a value comes from: the file, the 1-based line in it and the
// field path inside the object (for example
// spec.template.spec.containers[0].readinessProbe.periodSeconds).
//
// A value that was filled in with a default points at the nearest field
// that does exist (Line), while Path names the field that is missing.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Path string `json:"path,omitempty"`
}

// String formats the position as file:line path.
func (p Pos) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
	}
	if p.Path != "" {
		s += " " + p.Path
	}
	return s
}

// Field is one value read from a manifest together with its source
// position. Default is true when the manifest does not set the field and
// Value is the documented default (Kubernetes, controller or ALB).
type Field[T any] struct {
	Value   T    `json:"value"`
	Default bool `json:"default,omitempty"`
	Pos     Pos  `json:"pos"`
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends a mapping key to a field path. Keys that are not plain
// identifiers (annotations, labels) are written as ["key"].
func joinPath(parent, key string) string {
	if plainKey.MatchString(key) {
		if parent == "" {
			return key
		}
		return parent + "." + key
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

func indexPath(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

// lineIndex maps every field path of one YAML document to its line.
type lineIndex struct {
	file   string
	start  int
	lines  map[string]int
	values map[string]string // scalar values by path
}

func newLineIndex(file string, doc *yaml.Node) *lineIndex {
	ix := &lineIndex{file: file, lines: make(map[string]int), values: make(map[string]string)}
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	ix.start = root.Line
	ix.walk("", root)
	return ix
}

func (ix *lineIndex) walk(path string, n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			ix.lines[p] = k.Line
			if v.Kind == yaml.ScalarNode {
				ix.values[p] = v.Value
			}
			ix.walk(p, v)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := indexPath(path, i)
			ix.lines[p] = c.Line
			if c.Kind == yaml.ScalarNode {
				ix.values[p] = c.Value
			}
			ix.walk(p, c)
		}
	}
	// Aliases are not followed: their fields live at the anchor's lines,
	// and a self-referencing alias would never end.
}

// pos returns the position of path, or of its nearest existing ancestor
// when the path itself is not in the document.
func (ix *lineIndex) pos(path string) Pos {
	if ix == nil {
		return Pos{Path: path}
	}
	p := path
	for p != "" {
		if l, ok := ix.lines[p]; ok {
			return Pos{File: ix.file, Line: l, Path: path}
		}
		p = parentPath(p)
	}
	return Pos{File: ix.file, Line: ix.start, Path: path}
}

// nearest returns path or its nearest ancestor that the document sets.
func (ix *lineIndex) nearest(path string) string {
	for p := path; p != ""; p = parentPath(p) {
		if ix.has(p) {
			return p
		}
	}
	return ""
}

// has reports whether path is set in the document.
func (ix *lineIndex) has(path string) bool {
	if ix == nil {
		return false
	}
	_, ok := ix.lines[path]
	return ok
}

// parentPath strips the last element of a field path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			// a quoted key may itself contain '[': find the bracket that opens it
			if j := strings.LastIndex(p, "[\""); j >= 0 && strings.HasSuffix(p, "\"]") {
				i = j
			}
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// fuzzyPos finds the first indexed path whose index-free form equals
// dotted (as in encoding/json type errors, which drop list indices).
func (ix *lineIndex) fuzzyPos(dotted string) Pos {
	best := ""
	for p := range ix.lines {
		if indexRE.ReplaceAllString(p, "") == dotted && (best == "" || ix.lines[p] < ix.lines[best]) {
			best = p
		}
	}
	if best != "" {
		return ix.pos(best)
	}
	return ix.pos(dotted)
}
