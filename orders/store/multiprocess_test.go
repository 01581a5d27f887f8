package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/orders"
	"zerodrop.dev/zerodrop/orders/store"
)

// Environment of a worker process (this test binary started again).
const (
	envWorkerDSN   = "ZERODROP_STORE_WORKER_DSN"
	envWorkerName  = "ZERODROP_STORE_WORKER_NAME"
	envWorkerOrder = "ZERODROP_STORE_WORKER_ORDER"
)

const (
	workerCreates    = 25 // keyed creates per worker (each sent twice)
	workerIncrements = 25 // read-modify-write increments of the shared order per worker
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv(envWorkerDSN); dsn != "" {
		id, _ := strconv.ParseInt(os.Getenv(envWorkerOrder), 10, 64)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := runWorker(ctx, dsn, os.Getenv(envWorkerName), id)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runWorker opens its own store on dsn and writes: keyed creates (each
// retried once, as a client would) and versioned increments of the
// quantity of order id, re-reading on conflict.
func runWorker(ctx context.Context, dsn, name string, id int64) error {
	s, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	for i := range workerCreates {
		n := orders.NewOrder{CustomerID: int64(1 + i%100), MerchantID: 2, Items: []orders.Item{{SKU: name, Quantity: 1}},
			IdempotencyKey: fmt.Sprintf("%s-%d", name, i), Fingerprint: "fp"}
		first, created, err := s.Create(ctx, n)
		if err != nil || !created {
			return fmt.Errorf("%s create %d: created=%v err=%v", name, i, created, err)
		}
		again, created, err := s.Create(ctx, n)
		if err != nil || created || again.ID != first.ID {
			return fmt.Errorf("%s retried create %d: id %d vs %d, created=%v err=%v", name, i, again.ID, first.ID, created, err)
		}
	}
	for i := 0; i < workerIncrements; {
		o, err := s.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("%s get: %w", name, err)
		}
		items := []orders.Item{{SKU: "COUNTER", Quantity: o.Items[0].Quantity + 1}}
		_, err = s.Update(ctx, id, o.Version, orders.OrderUpdate{Items: items})
		switch {
		case errors.Is(err, orders.ErrVersionConflict):
			continue // someone else won this round: read again
		case err != nil:
			return fmt.Errorf("%s update: %w", name, err)
		}
		i++
	}
	return nil
}

// checkShared verifies that no create and no increment was lost.
func checkShared(t *testing.T, dsn string, id int64, workers int) {
	t.Helper()
	s := openStore(t, dsn)
	o, err := s.Get(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(1 + workers*workerIncrements)
	if o.Items[0].Quantity != want || o.Version != want {
		t.Errorf("shared order: quantity %d version %d, want %d and %d (lost updates)", o.Items[0].Quantity, o.Version, want, want)
	}
	if got := queryInt(t, dsn, "SELECT COUNT(*) FROM orders"); got != int64(1+workers*workerCreates) {
		t.Errorf("%d orders, want %d", got, 1+workers*workerCreates)
	}
}

func sharedOrder(t *testing.T, dsn string) int64 {
	t.Helper()
	s := openStore(t, dsn)
	o, _, err := s.Create(ctxT(t), orders.NewOrder{CustomerID: 1, MerchantID: 1, Items: []orders.Item{{SKU: "COUNTER", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// TestSQLiteManyProcesses runs several processes writing to one SQLite
// file at once: no lost write, no "database is locked" reaching a caller
// (a worker exits 1 on any error).
func TestSQLiteManyProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "shared.db")
	id := sharedOrder(t, dsn)
	const workers = 4
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	outs := make([]string, workers)
	errs := make([]error, workers)
	for w := range workers {
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envWorkerDSN+"="+dsn, envWorkerName+"=proc"+strconv.Itoa(w), envWorkerOrder+"="+strconv.FormatInt(id, 10))
		wg.Go(func() {
			out, err := cmd.CombinedOutput()
			outs[w], errs[w] = string(out), err
		})
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			t.Errorf("worker process %d: %v\n%s", w, errs[w], outs[w])
		}
	}
	checkShared(t, dsn, id, workers)
}

// TestSQLiteManyHandles does the same with independent store handles (one
// *sql.DB each) in this process.
func TestSQLiteManyHandles(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "shared.db")
	id := sharedOrder(t, dsn)
	const workers = 4
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() { errs[w] = runWorker(ctxT(t), dsn, "handle"+strconv.Itoa(w), id) })
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("handle %d: %v", w, err)
		}
	}
	checkShared(t, dsn, id, workers)
}

// TestSQLiteNaiveWritersGetLocked proves the failure mode the store
// avoids: independent connections doing read-then-write in ordinary
// (deferred) transactions without a busy timeout or retries see
// "database is locked" under contention.
func TestSQLiteNaiveWritersGetLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "naive.db")
	openStore(t, "sqlite:"+path) // schema and seed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		locked error
	)
	for w := range 4 {
		db, err := sql.Open("sqlite", path+"?_journal_mode=WAL")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		defer db.Close()
		wg.Go(func() {
			for i := 0; i < 500 && ctx.Err() == nil; i++ {
				err := naiveIncrement(ctx, db, w)
				if err != nil && strings.Contains(err.Error(), "database is locked") {
					mu.Lock()
					locked = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if locked == nil {
		t.Fatal("no 'database is locked' error from naive concurrent writers; the failure mode this store guards against did not show")
	}
	t.Logf("naive writers failed as expected: %v", locked)
}

func naiveIncrement(ctx context.Context, db *sql.DB, w int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders").Scan(&n); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (customer_id, merchant_id, items, destination, status, delivery_method,
		delivery_status, version, created_at, updated_at) VALUES (1, 1, '[]', ?, 'pending', 'standard', 'pending', 1, 0, 0)`,
		fmt.Sprint("w", w, "n", n)); err != nil {
		return err
	}
	return tx.Commit()
}
