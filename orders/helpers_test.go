package orders_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"zerodrop.dev/zerodrop/orders"
	"zerodrop.dev/zerodrop/orders/store"
)

func openSQLite(t testing.TB) (orders.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orders.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// postgresSchemaURL makes a schema for the test on the test server and
// returns base URL plus search_path; skip locally / fail in CI without it.
func postgresSchemaURL(t testing.TB) (base, withSchema string) {
	t.Helper()
	base = os.Getenv("ZERODROP_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("ZERODROP_TEST_POSTGRES is unset in CI: the PostgreSQL tests must run")
		}
		t.Skip("ZERODROP_TEST_POSTGRES unset; run: export ZERODROP_TEST_POSTGRES=$(scripts/postgres.sh)")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "zdtest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base, base + sep + "search_path=" + schema
}

// server serves the API over a real loopback socket.
func server(t testing.TB, s orders.Store, opts orders.Options) *httptest.Server {
	t.Helper()
	h, err := orders.NewHandler(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) order(t testing.TB) orders.Order {
	t.Helper()
	var o orders.Order
	if err := json.Unmarshal(r.body, &o); err != nil {
		t.Fatalf("decode order from %d %s: %v", r.status, r.body, err)
	}
	return o
}

func (r reply) errCode(t testing.TB) string {
	t.Helper()
	var e orders.ErrorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d: body is not a JSON error: %q (%v)", r.status, r.body, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e.Error.Code
}

func do(t testing.TB, srv *httptest.Server, method, path, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func gather(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			buf.WriteString(mf.GetName())
			for _, l := range m.GetLabel() {
				buf.WriteString(" " + l.GetName() + "=" + l.GetValue())
			}
			if c := m.GetCounter(); c != nil {
				buf.WriteString(" " + jsonNum(c.GetValue()))
			}
			if h := m.GetHistogram(); h != nil {
				buf.WriteString(" count=" + jsonNum(float64(h.GetSampleCount())))
			}
			buf.WriteString("\n")
		}
	}
	return buf.String()
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }
