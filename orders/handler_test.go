package orders_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"database/sql"

	"github.com/prometheus/client_golang/prometheus"

	"zerodrop.dev/zerodrop/orders"
	"zerodrop.dev/zerodrop/orders/store"
)

func TestAPIRoundTrip(t *testing.T) {
	s, _ := openSQLite(t)
	day := time.Now().UTC()
	srv := server(t, s, orders.Options{Now: func() time.Time { return day }})

	r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"BOX","quantity":2}],"customer_id":5,"merchant_id":6,"destination":"Pier 9"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	o := r.order(t)
	if o.CustomerID != 5 || o.MerchantID != 6 || o.Destination != "Pier 9" || o.Version != 1 || o.Status != "pending" ||
		o.Delivery.Method != "standard" || o.Delivery.Status != "pending" || len(o.Items) != 1 {
		t.Errorf("created %+v", o)
	}
	if loc := r.header.Get("Location"); loc != fmt.Sprintf("/logistics/orders/%d", o.ID) {
		t.Errorf("Location %q", loc)
	}
	if et := r.header.Get("ETag"); et != `"1"` {
		t.Errorf("ETag %q", et)
	}
	path := fmt.Sprintf("/logistics/orders/%d", o.ID)

	r = do(t, srv, "GET", path, "")
	if r.status != 200 || r.order(t).ID != o.ID || r.header.Get("ETag") != `"1"` {
		t.Fatalf("get: %d %s etag %q", r.status, r.body, r.header.Get("ETag"))
	}
	if r := do(t, srv, "GET", "/logistics/orders/999999", ""); r.status != 404 || r.errCode(t) != "order_not_found" {
		t.Errorf("get missing: %d %s", r.status, r.body)
	}

	// Updates need a version: 428 without, 200 with If-Match, 409 stale.
	if r := do(t, srv, "PUT", path, `{"status":"confirmed"}`); r.status != 428 || r.errCode(t) != "version_required" {
		t.Errorf("update without version: %d %s", r.status, r.body)
	}
	r = do(t, srv, "PUT", path, `{"status":"confirmed"}`, "If-Match", `"1"`)
	if r.status != 200 || r.order(t).Version != 2 || r.order(t).Status != "confirmed" || r.header.Get("ETag") != `"2"` {
		t.Fatalf("update If-Match: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "PUT", path, `{"destination":"x","version":1}`); r.status != 409 || r.errCode(t) != "version_conflict" {
		t.Errorf("stale update: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "PUT", path, `{"destination":"x","version":1}`, "If-Match", `"2"`); r.status != 400 || r.errCode(t) != "version_mismatch" {
		t.Errorf("body/header disagree: %d %s", r.status, r.body)
	}
	r = do(t, srv, "PUT", path, `{"items":[{"sku":"CRATE","quantity":3}],"version":2}`)
	if r.status != 200 || r.order(t).Items[0].SKU != "CRATE" || r.order(t).Destination != "Pier 9" {
		t.Fatalf("update items with body version: %d %s", r.status, r.body)
	}

	// Delivery: version optional, enums validated.
	r = do(t, srv, "PUT", path+"/delivery", `{"method":"express","status":"dispatched"}`)
	if r.status != 200 || r.order(t).Delivery != (orders.Delivery{Method: "express", Status: "dispatched"}) || r.order(t).Version != 4 {
		t.Fatalf("delivery: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "PUT", path+"/delivery", `{"status":"teleported"}`); r.status != 422 || r.errCode(t) != "invalid_delivery_status" {
		t.Errorf("bad delivery status: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "PUT", path+"/delivery", `{"status":"delivered"}`, "If-Match", `"3"`); r.status != 409 {
		t.Errorf("stale delivery: %d %s", r.status, r.body)
	}

	// Defaults: customer and merchant from seed data, destination the customer's address.
	r = do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`)
	d := r.order(t)
	if r.status != 201 || d.CustomerID < 1 || d.CustomerID > 100 || d.MerchantID < 1 || d.MerchantID > 100 ||
		!strings.Contains(d.Destination, "Quay Street") {
		t.Errorf("defaults: %d %s", r.status, r.body)
	}

	r = do(t, srv, "GET", "/logistics/orders/today?limit=1", "")
	var today orders.TodayResponse
	if err := jsonUnmarshal(r.body, &today); err != nil || r.status != 200 || today.Count != 1 || today.Orders[0].ID != d.ID ||
		!today.Since.Equal(time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)) {
		t.Errorf("today: %d %s", r.status, r.body)
	}
	r = do(t, srv, "GET", "/logistics/orders/today", "")
	if err := jsonUnmarshal(r.body, &today); err != nil || today.Count != 2 || today.Orders[0].ID != d.ID || today.Orders[1].ID != o.ID {
		t.Errorf("today default limit: %s", r.body)
	}
}

func TestAPIIdempotency(t *testing.T) {
	s, _ := openSQLite(t)
	srv := server(t, s, orders.Options{})
	body := `{"items":[{"sku":"A","quantity":1}]}`
	const n = 12
	var wg sync.WaitGroup
	replies := make([]reply, n)
	for i := range n {
		wg.Go(func() { replies[i] = do(t, srv, "POST", "/logistics/orders", body, "Idempotency-Key", "abc-1") })
	}
	wg.Wait()
	created, replayed := 0, 0
	id := replies[0].order(t).ID
	for _, r := range replies {
		switch r.status {
		case 201:
			created++
		case 200:
			replayed++
			if r.header.Get("Idempotent-Replayed") != "true" {
				t.Error("replay without Idempotent-Replayed header")
			}
		default:
			t.Fatalf("status %d %s", r.status, r.body)
		}
		if r.order(t).ID != id {
			t.Fatalf("two orders for one key: %d and %d", r.order(t).ID, id)
		}
	}
	if created != 1 || replayed != n-1 {
		t.Errorf("%d created, %d replayed; want 1 and %d", created, replayed, n-1)
	}
	// Same fields in another order and spacing: same request.
	if r := do(t, srv, "POST", "/logistics/orders", `{ "items" : [ {"quantity":1, "sku":"A"} ] }`, "Idempotency-Key", "abc-1"); r.status != 200 || r.order(t).ID != id {
		t.Errorf("reformatted replay: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"B","quantity":1}]}`, "Idempotency-Key", "abc-1"); r.status != 422 || r.errCode(t) != "idempotency_key_reused" {
		t.Errorf("key reused with another body: %d %s", r.status, r.body)
	}
	// Content-Type is not checked (curl -d sends a form type): the body is.
	if r := do(t, srv, "POST", "/logistics/orders", body, "Content-Type", "application/x-www-form-urlencoded"); r.status != 201 {
		t.Errorf("JSON body with a form Content-Type: %d %s", r.status, r.body)
	}
	// Without a key every POST is a new order.
	a := do(t, srv, "POST", "/logistics/orders", body).order(t)
	b := do(t, srv, "POST", "/logistics/orders", body).order(t)
	if a.ID == b.ID {
		t.Error("two unkeyed creates returned the same order")
	}
}

func TestAPIBadInput(t *testing.T) {
	s, _ := openSQLite(t)
	srv := server(t, s, orders.Options{})
	o := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`).order(t)
	path := fmt.Sprintf("/logistics/orders/%d", o.ID)
	many := `{"items":[` + strings.Repeat(`{"sku":"A","quantity":1},`, orders.MaxItems) + `{"sku":"A","quantity":1}]}`
	huge := `{"items":[{"sku":"A","quantity":1}],"destination":"` + strings.Repeat("x", orders.MaxBodyBytes) + `"}`
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"malformed json", "POST", "/logistics/orders", `{"items":[`, nil, 400, "malformed_json"},
		{"syntax error", "POST", "/logistics/orders", `{"items" 1}`, nil, 400, "malformed_json"},
		{"empty body", "POST", "/logistics/orders", "", nil, 400, "empty_body"},
		{"not an object", "POST", "/logistics/orders", `[1,2]`, nil, 400, "wrong_type"},
		{"two values", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]} {}`, nil, 400, "malformed_json"},
		{"unknown field", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}],"colour":"red"}`, nil, 400, "unknown_field"},
		{"wrong type", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":"1"}]}`, nil, 400, "wrong_type"},
		{"float quantity", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1.5}]}`, nil, 400, "wrong_type"},
		{"huge quantity", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1e40}]}`, nil, 400, "wrong_type"},
		{"zero quantity", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":0}]}`, nil, 422, "invalid_quantity"},
		{"negative quantity", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":-3}]}`, nil, 422, "invalid_quantity"},
		{"empty items", "POST", "/logistics/orders", `{"items":[]}`, nil, 422, "empty_items"},
		{"no items", "POST", "/logistics/orders", `{}`, nil, 422, "empty_items"},
		{"too many items", "POST", "/logistics/orders", many, nil, 422, "too_many_items"},
		{"empty sku", "POST", "/logistics/orders", `{"items":[{"sku":"","quantity":1}]}`, nil, 422, "invalid_sku"},
		{"control char sku", "POST", "/logistics/orders", `{"items":[{"sku":"a\u0000b","quantity":1}]}`, nil, 422, "invalid_sku"},
		{"unknown customer", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}],"customer_id":101}`, nil, 422, "unknown_customer"},
		{"unknown merchant", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}],"merchant_id":-1}`, nil, 422, "unknown_merchant"},
		{"body too large", "POST", "/logistics/orders", huge, nil, 413, "body_too_large"},
		{"form body", "POST", "/logistics/orders", `items=A`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "malformed_json"},
		{"bad idempotency key", "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_idempotency_key"},
		{"bad id", "GET", "/logistics/orders/abc", "", nil, 400, "invalid_id"},
		{"zero id", "GET", "/logistics/orders/0", "", nil, 400, "invalid_id"},
		{"overflow id", "GET", "/logistics/orders/99999999999999999999", "", nil, 400, "invalid_id"},
		{"bad id put", "PUT", "/logistics/orders/-1", `{"status":"confirmed","version":1}`, nil, 400, "invalid_id"},
		{"empty update", "PUT", path, `{"version":1}`, nil, 422, "empty_update"},
		{"bad status", "PUT", path, `{"status":"lost","version":1}`, nil, 422, "invalid_status"},
		{"bad version", "PUT", path, `{"status":"confirmed","version":0}`, nil, 422, "invalid_version"},
		{"bad if-match", "PUT", path, `{"status":"confirmed"}`, []string{"If-Match", "*"}, 400, "invalid_if_match"},
		{"update empty items", "PUT", path, `{"items":[],"version":1}`, nil, 422, "empty_items"},
		{"bad delivery method", "PUT", path + "/delivery", `{"method":"teleport"}`, nil, 422, "invalid_delivery_method"},
		{"empty delivery", "PUT", path + "/delivery", `{}`, nil, 422, "empty_update"},
		{"bad limit", "GET", "/logistics/orders/today?limit=abc", "", nil, 400, "invalid_limit"},
		{"zero limit", "GET", "/logistics/orders/today?limit=0", "", nil, 400, "invalid_limit"},
		{"method not allowed", "DELETE", path, "", nil, 405, "method_not_allowed"},
		{"method not allowed list", "GET", "/logistics/orders", "", nil, 405, "method_not_allowed"},
		{"method not allowed today", "POST", "/logistics/orders/today", "", nil, 405, "method_not_allowed"},
		{"unknown route", "GET", "/logistics/nope", "", nil, 404, "route_not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, srv, c.method, c.path, c.body, c.hdr...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if code := r.errCode(t); code != c.code {
				t.Errorf("code %q, want %q (%s)", code, c.code, r.body)
			}
		})
	}
	if r := do(t, srv, "DELETE", path, ""); r.header.Get("Allow") != "GET, PUT, HEAD" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	// The order is untouched by all of that.
	if got := do(t, srv, "GET", path, "").order(t); got.Version != 1 {
		t.Errorf("order changed by bad requests: %+v", got)
	}
	if r := do(t, srv, "GET", "/logistics/orders/today?limit=100000", ""); r.status != 200 {
		t.Errorf("limit above max is clamped, got %d", r.status)
	}
}

// TestAPIStoreLockedIs503: a SQLite file locked by another process's
// writer makes writes answer 503 within the store timeout, not hang.
func TestAPIStoreLockedIs503(t *testing.T) {
	s, path := openSQLite(t)
	srv := server(t, s, orders.Options{StoreTimeout: 300 * time.Millisecond})
	if r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`); r.status != 201 {
		t.Fatalf("before lock: %d %s", r.status, r.body)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`)
	took := time.Since(start)
	if r.status != 503 || r.errCode(t) != "store_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("while locked: %d %s", r.status, r.body)
	}
	if took > 3*time.Second {
		t.Errorf("503 took %v; the store timeout is 300ms", took)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`); r.status != 201 {
		t.Fatalf("after unlock: %d %s", r.status, r.body)
	}
}

// TestAPIPostgresBlackholeIs503 puts a loopback proxy between the store
// and PostgreSQL, then makes it swallow traffic: requests answer 503 at the
// store timeout instead of hanging, and recover when traffic flows again.
func TestAPIPostgresBlackholeIs503(t *testing.T) {
	base, url := postgresSchemaURL(t)
	_ = base
	px := newProxy(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := store.Open(ctx, px.url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := server(t, s, orders.Options{StoreTimeout: 400 * time.Millisecond})
	r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`)
	if r.status != 201 {
		t.Fatalf("through proxy: %d %s", r.status, r.body)
	}
	id := r.order(t).ID
	px.blackhole(true)
	start := time.Now()
	r = do(t, srv, "GET", fmt.Sprintf("/logistics/orders/%d", id), "")
	if r.status != 503 || r.errCode(t) != "store_unavailable" {
		t.Fatalf("blackholed: %d %s", r.status, r.body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("503 took %v; store timeout 400ms", took)
	}
	px.blackhole(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = do(t, srv, "GET", fmt.Sprintf("/logistics/orders/%d", id), "")
		if r.status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.status != 200 {
		t.Fatalf("after the blackhole: %d %s", r.status, r.body)
	}
}

// proxy forwards loopback TCP to PostgreSQL; in blackhole mode it stops
// forwarding on every connection (bytes vanish, nothing is closed).
type proxy struct {
	url  string
	mu   sync.Mutex
	hole bool
}

func newProxy(t *testing.T, pgURL string) *proxy {
	t.Helper()
	i := strings.Index(pgURL, "@") + 1
	j := i + strings.IndexAny(pgURL[i:], "/?")
	target := pgURL[i:j]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{url: pgURL[:i] + ln.Addr().String() + pgURL[j:]}
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); p.pipe(c, up, done) }()
			go func() { defer conns.Done(); p.pipe(up, c, done) }()
		}
	}()
	return p
}

func (p *proxy) blackhole(on bool) { p.mu.Lock(); p.hole = on; p.mu.Unlock() }

func (p *proxy) pipe(from, to net.Conn, done <-chan struct{}) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		from.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := from.Read(buf)
		select {
		case <-done:
			return
		default:
		}
		if n > 0 {
			p.mu.Lock()
			hole := p.hole
			p.mu.Unlock()
			if !hole {
				if _, err := to.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
	}
}

// panicStore makes Get panic, to prove the recover middleware.
type panicStore struct{ orders.Store }

func (panicStore) Get(context.Context, int64) (orders.Order, error) { panic("boom") }

func TestAPIPanicIs500(t *testing.T) {
	s, _ := openSQLite(t)
	srv := server(t, panicStore{s}, orders.Options{})
	r := do(t, srv, "GET", "/logistics/orders/1", "")
	if r.status != 500 || r.errCode(t) != "internal" {
		t.Fatalf("panic: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`); r.status != 201 {
		t.Fatalf("server unusable after a panic: %d", r.status)
	}
}

func TestAPIMetricsAndWork(t *testing.T) {
	s, _ := openSQLite(t)
	reg := prometheus.NewRegistry()
	var calls sync.WaitGroup
	calls.Add(1)
	var once sync.Once
	srv := server(t, s, orders.Options{Registerer: reg, Work: func() time.Duration {
		once.Do(calls.Done)
		return 30 * time.Millisecond
	}})
	start := time.Now()
	do(t, srv, "POST", "/logistics/orders", `{"items":[{"sku":"A","quantity":1}]}`)
	if time.Since(start) < 30*time.Millisecond {
		t.Error("work time was not spent")
	}
	calls.Wait()
	do(t, srv, "GET", "/logistics/orders/abc", "")
	do(t, srv, "GET", "/nowhere", "")
	out := gather(t, reg)
	for _, want := range []string{
		"zerodrop_orders_http_requests_total code=201 route=POST /logistics/orders 1",
		"zerodrop_orders_http_requests_total code=400 route=GET /logistics/orders/{id} 1",
		"zerodrop_orders_http_requests_total code=404 route=unmatched 1",
		"zerodrop_orders_http_request_duration_seconds route=POST /logistics/orders count=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}
