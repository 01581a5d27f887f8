package results

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

//go:embed schema.json
var schemaJSON []byte

//go:embed schema-v1.json
var schemaV1JSON []byte

// Schema returns the JSON Schema (draft 4) of the current result format
// (SchemaVersion), for tools outside Go. It is a copy; callers may modify it.
func Schema() []byte { return append([]byte(nil), schemaJSON...) }

// ValidateSchema checks a JSON document against the embedded JSON Schema of
// its schema_version (shape only; version 1 documents against the version 1
// schema). Decode enforces the same rules in Go and also checks consistency
// (sums, bucket order), so a document Decode accepts passes here.
func ValidateSchema(data []byte) error {
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("validating result against schema: %w", err)
	}
	raw := schemaJSON
	if m, ok := doc.(map[string]any); ok && m["schema_version"] == float64(1) {
		raw = schemaV1JSON
	}
	s, err := compiledSchema(raw)
	if err != nil {
		return err
	}
	if err := validate.AgainstSchema(s, doc, strfmt.Default); err != nil {
		return fmt.Errorf("validating result against schema: %w", err)
	}
	return nil
}

// compiledSchema parses the embedded schema with its local references
// ("#/definitions/x") inlined, since the validator does not follow them.
// It is rebuilt per call: no package state.
func compiledSchema(schema []byte) (*spec.Schema, error) {
	var raw map[string]any
	if err := json.Unmarshal(schema, &raw); err != nil {
		return nil, fmt.Errorf("parsing embedded schema: %w", err)
	}
	defs, _ := raw["definitions"].(map[string]any)
	inlined, err := inlineRefs(raw, defs, 0)
	if err != nil {
		return nil, err
	}
	m := inlined.(map[string]any)
	delete(m, "definitions")
	delete(m, "$schema")
	delete(m, "$id")
	buf, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("building schema: %w", err)
	}
	var s spec.Schema
	if err := json.Unmarshal(buf, &s); err != nil {
		return nil, fmt.Errorf("parsing embedded schema: %w", err)
	}
	return &s, nil
}

func inlineRefs(v any, defs map[string]any, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("schema references nest too deep")
	}
	switch t := v.(type) {
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, "#/definitions/")
			def, ok := defs[name]
			if !found || !ok {
				return nil, fmt.Errorf("schema reference %q not found", ref)
			}
			return inlineRefs(def, defs, depth+1)
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			if k == "definitions" {
				continue
			}
			x, err := inlineRefs(e, defs, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			x, err := inlineRefs(e, defs, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	default:
		return v, nil
	}
}
