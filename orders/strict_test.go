package orders_test

import (
	"strings"
	"testing"

	"zerodrop.dev/zerodrop/orders"
)

// The API is strict where docs/serve.md says it is: a field name in the
// wrong case is an unknown field, invalid UTF-8 is malformed JSON, a null
// body is the wrong type, messages are not HTML-escaped, and a limit too
// long for a number is clamped like every other limit above 500.
func TestStrictWhereItSaysItIs(t *testing.T) {
	s, _ := openSQLite(t)
	srv := server(t, s, orders.Options{})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"upper-case field", "POST", "/logistics/orders", `{"ITEMS":[{"sku":"A","quantity":1}]}`, 400, "unknown_field"},
		{"mixed-case nested field", "POST", "/logistics/orders", `{"items":[{"SKU":"A","quantity":1}]}`, 400, "unknown_field"},
		{"mixed-case update field", "PUT", "/logistics/orders/1", `{"Status":"confirmed","version":1}`, 400, "unknown_field"},
		{"invalid UTF-8", "POST", "/logistics/orders", "{\"items\":[{\"sku\":\"A\xff\",\"quantity\":1}]}", 400, "malformed_json"},
		{"null body", "POST", "/logistics/orders", `null`, 400, "wrong_type"},
		{"array body", "PUT", "/logistics/orders/1/delivery", `[]`, 400, "wrong_type"},
	} {
		r := do(t, srv, tc.method, tc.path, tc.body)
		if r.status != tc.status || r.errCode(t) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}

	r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"<A&B>","quantity":1}],"nope":1}`)
	if strings.Contains(string(r.body), `\u003c`) || strings.Contains(string(r.body), `\u0026`) {
		t.Errorf("message is HTML-escaped: %s", r.body)
	}

	over := do(t, srv, "GET", "/logistics/orders/today?limit=501", "")
	huge := do(t, srv, "GET", "/logistics/orders/today?limit=99999999999999999999999", "")
	if over.status != 200 || huge.status != over.status {
		t.Errorf("limit 501: %d, limit 99999999999999999999999: %d %s; want the same answer", over.status, huge.status, huge.body)
	}
	if neg := do(t, srv, "GET", "/logistics/orders/today?limit=-99999999999999999999999", ""); neg.status != 400 {
		t.Errorf("a hugely negative limit: %d", neg.status)
	}
}
