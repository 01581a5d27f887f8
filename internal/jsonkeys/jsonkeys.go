// Package jsonkeys finds the JSON object keys that encoding/json would
// accept only by ignoring case ("ITEMS" for a field tagged "items").
// Strict APIs call Check after decoding so such a key is rejected like an
// unknown field instead of silently filling the field.
package jsonkeys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Error is a key whose case differs from the field it would fill.
type Error struct {
	// Path is where the key sits ("items[0]"), empty at the top level.
	Path string
	// Key is the key as sent; Want is the field's name.
	Key, Want string
}

// Error says which key and what was meant.
func (e *Error) Error() string {
	at := ""
	if e.Path != "" {
		at = " in " + e.Path
	}
	return fmt.Sprintf("unknown field %q%s (field names are case-sensitive: %q)", e.Key, at, e.Want)
}

// Check walks data (a JSON document already decoded into a value of v's
// type without error) and returns an *Error for the first object key that
// differs only in case from the JSON name of a field of the matching
// struct. It returns nil for anything it cannot walk.
func Check(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	return walk(doc, reflect.TypeOf(v), "")
}

func walk(doc any, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return nil
		}
		fields := fieldsOf(t)
		for key, val := range d {
			f, ok := fields[key]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return &Error{Path: path, Key: key, Want: name}
					}
				}
				continue
			}
			p := key
			if path != "" {
				p = path + "." + key
			}
			if err := walk(val, f, p); err != nil {
				return err
			}
		}
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil
		}
		for i, el := range d {
			if err := walk(el, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldsOf maps the JSON names of t's exported fields to their types
// (embedded structs flattened, as encoding/json does).
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fieldsOf(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
