// Package store holds the implementations of orders.Store: SQLite (the
// embedded default, one file safely shared by many processes) and
// PostgreSQL. Both apply their embedded schema migrations when opened, and
// doing so from many processes at once is safe.
package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"zerodrop.dev/zerodrop/orders"
)

// Kind names a store implementation.
type Kind string

// Store kinds.
const (
	KindSQLite   Kind = "sqlite"
	KindPostgres Kind = "postgres"
)

// DefaultDSN is the store used when none is configured: a SQLite file in
// the working directory.
const DefaultDSN = "sqlite:zerodrop-orders.db"

// ParseDSN checks a store address and says which kind it is. Accepted:
// "sqlite:PATH", "postgres://…" and "postgresql://…". For SQLite, target is
// PATH; for PostgreSQL, the URL itself.
func ParseDSN(dsn string) (kind Kind, target string, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return "", "", fmt.Errorf("store address %q: sqlite: needs a file path, e.g. sqlite:zerodrop-orders.db", dsn)
		}
		if strings.ContainsAny(path, "?#\x00") {
			return "", "", fmt.Errorf("store address %q: the SQLite path must not contain '?', '#' or NUL", dsn)
		}
		return KindSQLite, path, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, err := pgxpool.ParseConfig(dsn); err != nil {
			return "", "", fmt.Errorf("store address: invalid PostgreSQL URL: %w", err)
		}
		return KindPostgres, dsn, nil
	default:
		return "", "", fmt.Errorf("store address %q: want sqlite:PATH, postgres://… or postgresql://…", redact(dsn))
	}
}

// redact hides what may be a password in an address we could not parse.
func redact(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}

// Open opens (creating and migrating when needed) the store at dsn; see
// ParseDSN for the forms.
func Open(ctx context.Context, dsn string) (orders.Store, error) {
	kind, target, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	switch kind {
	case KindSQLite:
		return OpenSQLite(ctx, target)
	default:
		return OpenPostgres(ctx, target)
	}
}

//go:embed migrations
var migrationFS embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads migrations/<dialect>/NNNN_name.sql in version order.
func loadMigrations(dialect string) ([]migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations %s: %w", dir, err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("embedded migration %s/%s: name must be NNNN_name.sql", dir, name)
		}
		b, err := fs.ReadFile(migrationFS, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s/%s: %w", dir, name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}
