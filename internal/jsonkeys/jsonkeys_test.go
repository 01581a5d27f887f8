package jsonkeys

import (
	"encoding/json"
	"strings"
	"testing"
)

type item struct {
	SKU string `json:"sku"`
}

type order struct {
	Items []item `json:"items"`
	Note  *string
	Inner struct {
		Level int `json:"level"`
	} `json:"inner"`
}

func TestCheck(t *testing.T) {
	for doc, want := range map[string]string{
		`{"items":[{"sku":"a"}],"Note":"x","inner":{"level":1}}`: "",
		`{"ITEMS":[]}`:            `unknown field "ITEMS" (field names are case-sensitive: "items")`,
		`{"items":[{"Sku":"a"}]}`: `unknown field "Sku" in items[0]`,
		`{"inner":{"Level":2}}`:   `unknown field "Level" in inner`,
		`{"note":"x"}`:            `unknown field "note"`,
		`[1,2]`:                   "",
		`not json`:                "",
	} {
		var o order
		_ = json.Unmarshal([]byte(doc), &o) // encoding/json takes every one of them
		err := Check([]byte(doc), &o)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", doc, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(`{"ITEMS":[{"SKU":"x"}]}`)
	f.Add(`{"items":[{"sku":"x"}],"inner":{"LEVEL":1}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var o order
		_ = Check([]byte(doc), &o) // never panics
	})
}
