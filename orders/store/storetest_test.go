package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"zerodrop.dev/zerodrop/orders"
	"zerodrop.dev/zerodrop/orders/store"
)

// backend makes a fresh, isolated store address for one test.
type backend struct {
	name   string
	newDSN func(t *testing.T) string
}

// backends lists SQLite and, when reachable, PostgreSQL. Without
// ZERODROP_TEST_POSTGRES the PostgreSQL suite is skipped locally and fails
// in CI.
func backends(t *testing.T) []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "orders.db") }},
		{"postgres", func(t *testing.T) string { return postgresDSN(t) }},
	}
}

// postgresURL is the server the PostgreSQL tests use.
func postgresURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("ZERODROP_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("ZERODROP_TEST_POSTGRES is unset in CI: the PostgreSQL suite must run (see scripts/postgres.sh)")
		}
		t.Skip("ZERODROP_TEST_POSTGRES unset; run: export ZERODROP_TEST_POSTGRES=$(scripts/postgres.sh)")
	}
	return url
}

// postgresDSN creates a schema of its own for the test and returns a URL
// whose search_path is that schema; the schema is dropped afterwards.
func postgresDSN(t testing.TB) string {
	t.Helper()
	url := postgresURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "zdtest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}

func openStore(t testing.TB, dsn string) orders.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// queryInt runs a one-number query against the store's database directly,
// bypassing the Store code under test.
func queryInt(t testing.TB, dsn, query string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kind, target, err := store.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if kind == store.KindSQLite {
		db, err := sql.Open("sqlite", target+"?_busy_timeout=5000")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	q := query
	for i := range args { // ? -> $n
		q = strings.Replace(q, "?", "$"+string(rune('1'+i)), 1)
	}
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
