package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"zerodrop.dev/zerodrop/orders"
)

// busyTimeout is SQLite's own wait for a lock before it reports
// SQLITE_BUSY. It is short on purpose: SQLite's wait ignores contexts, so
// longer waits are done by retry loops that stop when the context ends.
const busyTimeout = 100 * time.Millisecond

// SQLite is an orders.Store in one SQLite file. Any number of processes
// may open the same file: it runs in WAL mode, writes are short BEGIN
// IMMEDIATE transactions, and SQLITE_BUSY is retried until the context
// ends.
type SQLite struct {
	db   *sql.DB
	path string
	// writeSlot serialises this process's writers so they do not contend
	// for the file lock with each other (other processes still may).
	writeSlot chan struct{}
}

var _ orders.Store = (*SQLite)(nil)

// OpenSQLite opens or creates the SQLite store at path and applies the
// migrations it lacks.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	dsn := path + "?_busy_timeout=" + fmt.Sprint(busyTimeout.Milliseconds()) +
		"&_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open SQLite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	s := &SQLite{db: db, path: path, writeSlot: make(chan struct{}, 1)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the file the store lives in.
func (s *SQLite) Path() string { return s.path }

// Close implements orders.Store.
func (s *SQLite) Close() error { return s.db.Close() }

// Ping implements orders.Store.
func (s *SQLite) Ping(ctx context.Context) error {
	return retryBusy(ctx, func() error {
		var one int
		return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	})
}

func (s *SQLite) migrate(ctx context.Context) error {
	ms, err := loadMigrations("sqlite")
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var have int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		for _, m := range ms {
			if m.version <= have {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate SQLite store %s: %w", s.path, err)
	}
	return nil
}

// write runs fn in a BEGIN IMMEDIATE transaction, retrying the whole
// transaction while the file is locked by another connection, until ctx
// ends.
func (s *SQLite) write(ctx context.Context, fn func(*sql.Tx) error) error {
	select {
	case s.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for write slot: %w", ctx.Err())
	}
	defer func() { <-s.writeSlot }()
	return retryBusy(ctx, func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// retryBusy calls fn until it succeeds, fails with something other than
// SQLITE_BUSY/SQLITE_LOCKED, or ctx ends.
func retryBusy(ctx context.Context, fn func() error) error {
	backoff := time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("database stayed locked: %w (%w)", ctx.Err(), err)
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("database stayed locked: %w (%w)", ctx.Err(), err)
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

const sqliteCols = `id, customer_id, merchant_id, items, destination, status, delivery_method, delivery_status, version, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

// scanSQLite reads the sqliteCols of a row, then the extra columns.
func scanSQLite(r rowScanner, extra ...any) (orders.Order, error) {
	var (
		o                orders.Order
		items            string
		created, updated int64
	)
	dest := append([]any{&o.ID, &o.CustomerID, &o.MerchantID, &items, &o.Destination, &o.Status,
		&o.Delivery.Method, &o.Delivery.Status, &o.Version, &created, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return orders.Order{}, err
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return orders.Order{}, fmt.Errorf("decode items of order %d: %w", o.ID, err)
	}
	o.CreatedAt = time.UnixMicro(created).UTC()
	o.UpdatedAt = time.UnixMicro(updated).UTC()
	return o, nil
}

// Create implements orders.Store.
func (s *SQLite) Create(ctx context.Context, n orders.NewOrder) (orders.Order, bool, error) {
	items, err := json.Marshal(n.Items)
	if err != nil {
		return orders.Order{}, false, fmt.Errorf("encode items: %w", err)
	}
	var (
		o       orders.Order
		created bool
	)
	err = s.write(ctx, func(tx *sql.Tx) error {
		now := orders.TruncateTime(time.Now()).UnixMicro()
		o, err = scanSQLite(tx.QueryRowContext(ctx, `
			INSERT INTO orders (customer_id, merchant_id, items, destination, status, delivery_method,
				delivery_status, version, created_at, updated_at, idempotency_key, request_fingerprint)
			SELECT c.id, m.id, ?, COALESCE(NULLIF(?, ''), c.address), ?, ?, ?, 1, ?, ?, NULLIF(?, ''), NULLIF(?, '')
			FROM customers c, merchants m WHERE c.id = ? AND m.id = ?
			ON CONFLICT (idempotency_key) DO NOTHING
			RETURNING `+sqliteCols,
			string(items), n.Destination, orders.StatusPending, orders.MethodStandard, orders.DeliveryPending,
			now, now, n.IdempotencyKey, n.Fingerprint, n.CustomerID, n.MerchantID))
		if err == nil {
			created = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("insert order: %w", err)
		}
		// Nothing inserted: the key was used before, or a party is unknown.
		if n.IdempotencyKey != "" {
			var fp sql.NullString
			o, err = scanSQLite(tx.QueryRowContext(ctx, `SELECT `+sqliteCols+`, request_fingerprint FROM orders WHERE idempotency_key = ?`,
				n.IdempotencyKey), &fp)
			switch {
			case err == nil && fp.String != n.Fingerprint:
				return orders.ErrIdempotencyMismatch
			case err == nil:
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("read order by idempotency key: %w", err)
			}
		}
		return s.unknownParty(ctx, tx, n)
	})
	if err != nil {
		return orders.Order{}, false, fmt.Errorf("create order: %w", err)
	}
	return o, created, nil
}

func (s *SQLite) unknownParty(ctx context.Context, tx *sql.Tx, n orders.NewOrder) error {
	var ok bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM customers WHERE id = ?)", n.CustomerID).Scan(&ok); err != nil {
		return fmt.Errorf("look up customer: %w", err)
	}
	if !ok {
		return fmt.Errorf("customer %d: %w", n.CustomerID, orders.ErrUnknownCustomer)
	}
	return fmt.Errorf("merchant %d: %w", n.MerchantID, orders.ErrUnknownMerchant)
}

// Get implements orders.Store.
func (s *SQLite) Get(ctx context.Context, id int64) (orders.Order, error) {
	var o orders.Order
	err := retryBusy(ctx, func() (err error) {
		o, err = scanSQLite(s.db.QueryRowContext(ctx, `SELECT `+sqliteCols+` FROM orders WHERE id = ?`, id))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, orders.ErrNotFound)
	case err != nil:
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, err)
	}
	return o, nil
}

// Update implements orders.Store.
func (s *SQLite) Update(ctx context.Context, id, version int64, u orders.OrderUpdate) (orders.Order, error) {
	var items, dest, status any
	if u.Items != nil {
		b, err := json.Marshal(u.Items)
		if err != nil {
			return orders.Order{}, fmt.Errorf("encode items: %w", err)
		}
		items = string(b)
	}
	if u.Destination != nil {
		dest = *u.Destination
	}
	if u.Status != nil {
		status = string(*u.Status)
	}
	o, err := s.update(ctx, id, version, `items = COALESCE(?, items), destination = COALESCE(?, destination), status = COALESCE(?, status)`,
		items, dest, status)
	if err != nil {
		return orders.Order{}, fmt.Errorf("update order %d: %w", id, err)
	}
	return o, nil
}

// UpdateDelivery implements orders.Store.
func (s *SQLite) UpdateDelivery(ctx context.Context, id, version int64, u orders.DeliveryUpdate) (orders.Order, error) {
	var method, status any
	if u.Method != nil {
		method = string(*u.Method)
	}
	if u.Status != nil {
		status = string(*u.Status)
	}
	o, err := s.update(ctx, id, version, `delivery_method = COALESCE(?, delivery_method), delivery_status = COALESCE(?, delivery_status)`,
		method, status)
	if err != nil {
		return orders.Order{}, fmt.Errorf("update delivery of order %d: %w", id, err)
	}
	return o, nil
}

// update sets the columns in set (with args) and bumps the version, when
// the version matches (or version is 0).
func (s *SQLite) update(ctx context.Context, id, version int64, set string, args ...any) (orders.Order, error) {
	var o orders.Order
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := orders.TruncateTime(time.Now()).UnixMicro()
		a := append(args, now, id, version, version)
		var err error
		o, err = scanSQLite(tx.QueryRowContext(ctx, `UPDATE orders SET `+set+`, version = version + 1, updated_at = ?
			WHERE id = ? AND (? = 0 OR version = ?) RETURNING `+sqliteCols, a...))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM orders WHERE id = ?)", id).Scan(&exists); err != nil {
			return fmt.Errorf("look up order: %w", err)
		}
		if exists {
			return orders.ErrVersionConflict
		}
		return orders.ErrNotFound
	})
	return o, err
}

// ListSince implements orders.Store.
func (s *SQLite) ListSince(ctx context.Context, since time.Time, limit int) ([]orders.Order, error) {
	var list []orders.Order
	err := retryBusy(ctx, func() error {
		list = list[:0]
		rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteCols+` FROM orders WHERE created_at >= ?
			ORDER BY created_at DESC, id DESC LIMIT ?`, orders.TruncateTime(since).UnixMicro(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanSQLite(rows)
			if err != nil {
				return err
			}
			list = append(list, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list orders since %s: %w", since.Format(time.RFC3339), err)
	}
	return list, nil
}

// String describes the store for logs.
func (s *SQLite) String() string { return "sqlite:" + strings.TrimSpace(s.path) }
