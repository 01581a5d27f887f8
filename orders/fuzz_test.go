package orders_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"zerodrop.dev/zerodrop/orders"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var seeds = []string{
	`{"items":[{"sku":"A","quantity":1}]}`,
	`{"items":[{"sku":"A","quantity":1}],"customer_id":5,"merchant_id":6,"destination":"Pier 9"}`,
	`{"items":[{"sku":"A","quantity":0}]}`,
	`{"items":[]}`, `{}`, `[]`, `null`, ``, `{"items":null}`, `{"items":[{"sku":1}]}`,
	`{"items":[{"sku":"A","quantity":1e99}]}`, `{"status":"confirmed","version":1}`,
	`{"method":"express","status":"in_transit","version":2}`, `{"x":1}`, `{"items":[{"sku":"\u0000","quantity":1}]}`,
	`{"items":[{"sku":"A","quantity":1}]}{}`, "\xff\xfe", `{"version":-1,"items":[{"sku":"A","quantity":1}]}`,
}

// checkDecode asserts the contract of every decoder: a 4xx *orders.Error or
// a request that passed validation.
func checkDecode(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *orders.Error
	if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" {
		t.Fatalf("decode error is not a 4xx API error: %#v", err)
	}
}

func FuzzDecodeCreateOrder(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := orders.DecodeCreateOrder(bytes.NewReader(b))
		checkDecode(t, err)
		if err != nil {
			return
		}
		if len(req.Items) == 0 || len(req.Items) > orders.MaxItems {
			t.Fatalf("accepted %d items", len(req.Items))
		}
		for _, it := range req.Items {
			if it.Quantity < 1 || it.Quantity > orders.MaxQuantity || it.SKU == "" {
				t.Fatalf("accepted item %+v", it)
			}
		}
		if req.Fingerprint() == "" {
			t.Fatal("empty fingerprint")
		}
	})
}

func FuzzDecodeUpdateOrder(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := orders.DecodeUpdateOrder(bytes.NewReader(b))
		checkDecode(t, err)
		if err == nil && req.Items == nil && req.Destination == nil && req.Status == nil {
			t.Fatal("accepted an empty update")
		}
		if err == nil && req.Status != nil && !req.Status.Valid() {
			t.Fatalf("accepted status %q", *req.Status)
		}
	})
}

func FuzzDecodeUpdateDelivery(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := orders.DecodeUpdateDelivery(bytes.NewReader(b))
		checkDecode(t, err)
		if err == nil && ((req.Method != nil && !req.Method.Valid()) || (req.Status != nil && !req.Status.Valid())) {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzHandler throws arbitrary requests at the whole API over a real
// SQLite store: never a 5xx, always a JSON body.
func FuzzHandler(f *testing.F) {
	paths := []string{"/logistics/orders", "/logistics/orders/1", "/logistics/orders/1/delivery", "/logistics/orders/today?limit=3", "/logistics/orders/x"}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	for i, s := range seeds {
		f.Add(uint8(i), uint8(i), []byte(s), "")
	}
	f.Add(uint8(2), uint8(1), []byte(`{"items":[{"sku":"A","quantity":1}]}`), `"1"`)
	s, _ := openSQLite(f)
	h, err := orders.NewHandler(s, orders.Options{})
	if err != nil {
		f.Fatal(err)
	}
	// One order to update.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/logistics/orders", bytes.NewReader([]byte(seeds[0]))))
	f.Fuzz(func(t *testing.T, m, p uint8, body []byte, ifMatch string) {
		req := httptest.NewRequest(methods[int(m)%len(methods)], paths[int(p)%len(paths)], bytes.NewReader(body))
		if ifMatch != "" {
			req.Header["If-Match"] = []string{ifMatch}
			req.Header["Idempotency-Key"] = []string{ifMatch}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.Method, req.URL, body, rec.Code, rec.Body)
		}
		if req.Method != http.MethodHead && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: body is not JSON: %q", req.Method, req.URL, rec.Body)
		}
	})
}
