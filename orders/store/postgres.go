package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"zerodrop.dev/zerodrop/orders"
)

// migrationLockKey is the pg_advisory_xact_lock key that serialises
// migrations of concurrent processes ("zerodrop" in ASCII).
const migrationLockKey int64 = 0x7a65726f64726f70

// defaultPoolConns is the pool size when the URL sets no pool_max_conns.
const defaultPoolConns = 16

// Postgres is an orders.Store in a PostgreSQL database (pgx pool).
type Postgres struct {
	pool *pgxpool.Pool
}

var _ orders.Store = (*Postgres)(nil)

// OpenPostgres connects to the PostgreSQL database at url (postgres://…)
// and applies the migrations it lacks. The pool size defaults to 16; set
// pool_max_conns in the URL to change it.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultPoolConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	s := &Postgres{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close implements orders.Store.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// Ping implements orders.Store.
func (s *Postgres) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func (s *Postgres) migrate(ctx context.Context) error {
	ms, err := loadMigrations("postgres")
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Held until commit: concurrent starters wait here, then see the
		// versions the first one recorded.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		for _, m := range ms {
			if m.version <= have {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate PostgreSQL store: %w", err)
	}
	return nil
}

const pgCols = `id, customer_id, merchant_id, items, destination, status, delivery_method, delivery_status, version, created_at, updated_at`

// scanPG reads the pgCols of a row, then the extra columns.
func scanPG(r pgx.Row, extra ...any) (orders.Order, error) {
	var (
		o     orders.Order
		items []byte
	)
	dest := append([]any{&o.ID, &o.CustomerID, &o.MerchantID, &items, &o.Destination, &o.Status,
		&o.Delivery.Method, &o.Delivery.Status, &o.Version, &o.CreatedAt, &o.UpdatedAt}, extra...)
	if err := r.Scan(dest...); err != nil {
		return orders.Order{}, err
	}
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return orders.Order{}, fmt.Errorf("decode items of order %d: %w", o.ID, err)
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, nil
}

// Create implements orders.Store.
func (s *Postgres) Create(ctx context.Context, n orders.NewOrder) (orders.Order, bool, error) {
	items, err := json.Marshal(n.Items)
	if err != nil {
		return orders.Order{}, false, fmt.Errorf("encode items: %w", err)
	}
	now := orders.TruncateTime(time.Now())
	// One statement: under READ COMMITTED a concurrent insert with the same
	// key makes this one wait, then do nothing.
	o, err := scanPG(s.pool.QueryRow(ctx, `
		INSERT INTO orders (customer_id, merchant_id, items, destination, status, delivery_method,
			delivery_status, version, created_at, updated_at, idempotency_key, request_fingerprint)
		SELECT c.id, m.id, $1, COALESCE(NULLIF($2, ''), c.address), $3, $4, $5, 1, $6, $6, NULLIF($7, ''), NULLIF($8, '')
		FROM customers c, merchants m WHERE c.id = $9 AND m.id = $10
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING `+pgCols,
		items, n.Destination, string(orders.StatusPending), string(orders.MethodStandard), string(orders.DeliveryPending),
		now, n.IdempotencyKey, n.Fingerprint, n.CustomerID, n.MerchantID))
	if err == nil {
		return o, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return orders.Order{}, false, fmt.Errorf("create order: %w", err)
	}
	if n.IdempotencyKey != "" {
		var fp *string
		o, err = scanPG(s.pool.QueryRow(ctx, `SELECT `+pgCols+`, request_fingerprint FROM orders WHERE idempotency_key = $1`,
			n.IdempotencyKey), &fp)
		switch {
		case err == nil && (fp == nil || *fp != n.Fingerprint):
			return orders.Order{}, false, fmt.Errorf("create order: %w", orders.ErrIdempotencyMismatch)
		case err == nil:
			return o, false, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return orders.Order{}, false, fmt.Errorf("create order: read order by idempotency key: %w", err)
		}
	}
	var customer bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)", n.CustomerID).Scan(&customer); err != nil {
		return orders.Order{}, false, fmt.Errorf("create order: look up customer: %w", err)
	}
	if !customer {
		return orders.Order{}, false, fmt.Errorf("create order: customer %d: %w", n.CustomerID, orders.ErrUnknownCustomer)
	}
	return orders.Order{}, false, fmt.Errorf("create order: merchant %d: %w", n.MerchantID, orders.ErrUnknownMerchant)
}

// Get implements orders.Store.
func (s *Postgres) Get(ctx context.Context, id int64) (orders.Order, error) {
	o, err := scanPG(s.pool.QueryRow(ctx, `SELECT `+pgCols+` FROM orders WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, orders.ErrNotFound)
	case err != nil:
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, err)
	}
	return o, nil
}

// Update implements orders.Store.
func (s *Postgres) Update(ctx context.Context, id, version int64, u orders.OrderUpdate) (orders.Order, error) {
	var items, dest, status any
	if u.Items != nil {
		b, err := json.Marshal(u.Items)
		if err != nil {
			return orders.Order{}, fmt.Errorf("encode items: %w", err)
		}
		items = b
	}
	if u.Destination != nil {
		dest = *u.Destination
	}
	if u.Status != nil {
		status = string(*u.Status)
	}
	o, err := s.update(ctx, id, version,
		`items = COALESCE($4::jsonb, items), destination = COALESCE($5::text, destination), status = COALESCE($6::text, status)`,
		items, dest, status)
	if err != nil {
		return orders.Order{}, fmt.Errorf("update order %d: %w", id, err)
	}
	return o, nil
}

// UpdateDelivery implements orders.Store.
func (s *Postgres) UpdateDelivery(ctx context.Context, id, version int64, u orders.DeliveryUpdate) (orders.Order, error) {
	var method, status any
	if u.Method != nil {
		method = string(*u.Method)
	}
	if u.Status != nil {
		status = string(*u.Status)
	}
	o, err := s.update(ctx, id, version,
		`delivery_method = COALESCE($4::text, delivery_method), delivery_status = COALESCE($5::text, delivery_status)`,
		method, status)
	if err != nil {
		return orders.Order{}, fmt.Errorf("update delivery of order %d: %w", id, err)
	}
	return o, nil
}

// update sets the columns in set (parameters from $4 on) and bumps the
// version, when the version matches (or version is 0).
func (s *Postgres) update(ctx context.Context, id, version int64, set string, args ...any) (orders.Order, error) {
	now := orders.TruncateTime(time.Now())
	a := append([]any{id, version, now}, args...)
	o, err := scanPG(s.pool.QueryRow(ctx, `UPDATE orders SET `+set+`, version = version + 1, updated_at = $3
		WHERE id = $1 AND ($2::bigint = 0 OR version = $2) RETURNING `+pgCols, a...))
	if !errors.Is(err, pgx.ErrNoRows) {
		return o, err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)", id).Scan(&exists); err != nil {
		return orders.Order{}, fmt.Errorf("look up order: %w", err)
	}
	if exists {
		return orders.Order{}, orders.ErrVersionConflict
	}
	return orders.Order{}, orders.ErrNotFound
}

// ListSince implements orders.Store.
func (s *Postgres) ListSince(ctx context.Context, since time.Time, limit int) ([]orders.Order, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgCols+` FROM orders WHERE created_at >= $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, orders.TruncateTime(since), limit)
	if err != nil {
		return nil, fmt.Errorf("list orders since %s: %w", since.Format(time.RFC3339), err)
	}
	defer rows.Close()
	var list []orders.Order
	for rows.Next() {
		o, err := scanPG(rows)
		if err != nil {
			return nil, fmt.Errorf("list orders: %w", err)
		}
		list = append(list, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list orders since %s: %w", since.Format(time.RFC3339), err)
	}
	return list, nil
}
