package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/orders"
	"zerodrop.dev/zerodrop/orders/store"
)

func ptr[T any](v T) *T { return &v }

func TestParseDSN(t *testing.T) {
	good := map[string]store.Kind{
		"sqlite:orders.db":                            store.KindSQLite,
		"sqlite:/tmp/x/orders.db":                     store.KindSQLite,
		"postgres://u@127.0.0.1:5432/db":              store.KindPostgres,
		"postgresql://u@127.0.0.1/db?sslmode=disable": store.KindPostgres,
	}
	for dsn, kind := range good {
		k, _, err := store.ParseDSN(dsn)
		if err != nil || k != kind {
			t.Errorf("ParseDSN(%q) = %q, %v; want %q", dsn, k, err, kind)
		}
	}
	for _, dsn := range []string{"", "sqlite:", "mysql://x", "orders.db", "sqlite:a?b", "postgres://u:p@h:notaport/db", "http://u:secret@h/"} {
		if _, _, err := store.ParseDSN(dsn); err == nil {
			t.Errorf("ParseDSN(%q): no error", dsn)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseDSN(%q) error leaks the password: %v", dsn, err)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestCRUD(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			s := openStore(t, b.newDSN(t))

			before := time.Now().Add(-time.Second)
			o, created, err := s.Create(ctx, orders.NewOrder{CustomerID: 7, MerchantID: 9,
				Items: []orders.Item{{SKU: "BOX-1", Quantity: 2}, {SKU: "ÉTUI", Quantity: 1}}})
			if err != nil || !created {
				t.Fatalf("Create: %v, created=%v", err, created)
			}
			if o.ID < 1 || o.Version != 1 || o.Status != orders.StatusPending ||
				o.Delivery != (orders.Delivery{Method: orders.MethodStandard, Status: orders.DeliveryPending}) ||
				o.CustomerID != 7 || o.MerchantID != 9 || len(o.Items) != 2 || o.Items[1].SKU != "ÉTUI" {
				t.Fatalf("created order = %+v", o)
			}
			if o.Destination != "7 Quay Street, Dock 1" {
				t.Errorf("default destination = %q, want the customer's seed address", o.Destination)
			}
			if o.CreatedAt.Before(before) || o.CreatedAt.Location() != time.UTC || !o.CreatedAt.Equal(o.UpdatedAt) {
				t.Errorf("times: created %v updated %v", o.CreatedAt, o.UpdatedAt)
			}

			got, err := s.Get(ctx, o.ID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(o) {
				t.Errorf("Get = %+v\nwant %+v", got, o)
			}
			if _, err := s.Get(ctx, o.ID+1000); !errors.Is(err, orders.ErrNotFound) {
				t.Errorf("Get(missing) err = %v, want ErrNotFound", err)
			}

			u, err := s.Update(ctx, o.ID, 1, orders.OrderUpdate{Destination: ptr("Pier 4"), Status: ptr(orders.StatusConfirmed)})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if u.Version != 2 || u.Destination != "Pier 4" || u.Status != orders.StatusConfirmed || len(u.Items) != 2 || u.UpdatedAt.Before(u.CreatedAt) {
				t.Errorf("updated = %+v", u)
			}
			if _, err := s.Update(ctx, o.ID, 1, orders.OrderUpdate{Destination: ptr("stale")}); !errors.Is(err, orders.ErrVersionConflict) {
				t.Errorf("stale Update err = %v, want ErrVersionConflict", err)
			}
			if _, err := s.Update(ctx, o.ID+1000, 1, orders.OrderUpdate{Destination: ptr("x")}); !errors.Is(err, orders.ErrNotFound) {
				t.Errorf("Update(missing) err = %v, want ErrNotFound", err)
			}
			u, err = s.Update(ctx, o.ID, 2, orders.OrderUpdate{Items: []orders.Item{{SKU: "CRATE", Quantity: 5}}})
			if err != nil || u.Version != 3 || len(u.Items) != 1 || u.Items[0] != (orders.Item{SKU: "CRATE", Quantity: 5}) || u.Destination != "Pier 4" {
				t.Fatalf("items Update = %+v, %v", u, err)
			}

			d, err := s.UpdateDelivery(ctx, o.ID, 0, orders.DeliveryUpdate{Method: ptr(orders.MethodExpress)})
			if err != nil || d.Version != 4 || d.Delivery.Method != orders.MethodExpress || d.Delivery.Status != orders.DeliveryPending {
				t.Fatalf("UpdateDelivery(any version) = %+v, %v", d, err)
			}
			if _, err := s.UpdateDelivery(ctx, o.ID, 3, orders.DeliveryUpdate{Status: ptr(orders.DeliveryFailed)}); !errors.Is(err, orders.ErrVersionConflict) {
				t.Errorf("stale UpdateDelivery err = %v, want ErrVersionConflict", err)
			}
			d, err = s.UpdateDelivery(ctx, o.ID, 4, orders.DeliveryUpdate{Status: ptr(orders.DeliveryInTransit)})
			if err != nil || d.Version != 5 || d.Delivery.Status != orders.DeliveryInTransit {
				t.Fatalf("UpdateDelivery(v4) = %+v, %v", d, err)
			}
			if _, err := s.UpdateDelivery(ctx, o.ID+1000, 0, orders.DeliveryUpdate{Status: ptr(orders.DeliveryFailed)}); !errors.Is(err, orders.ErrNotFound) {
				t.Errorf("UpdateDelivery(missing) err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestListSince(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			s := openStore(t, b.newDSN(t))
			var ids []int64
			for i := range 5 {
				o, _, err := s.Create(ctx, orders.NewOrder{CustomerID: 1, MerchantID: 1, Items: []orders.Item{{SKU: fmt.Sprint("S", i), Quantity: 1}}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, o.ID)
			}
			list, err := s.ListSince(ctx, time.Now().Add(-time.Hour), 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 3 || list[0].ID != ids[4] || list[1].ID != ids[3] || list[2].ID != ids[2] {
				t.Fatalf("ListSince(limit 3) ids = %v, want newest first %v", idsOf(list), []int64{ids[4], ids[3], ids[2]})
			}
			list, err = s.ListSince(ctx, time.Now().Add(time.Hour), 10)
			if err != nil || len(list) != 0 {
				t.Fatalf("ListSince(future) = %v, %v; want none", idsOf(list), err)
			}
		})
	}
}

func idsOf(list []orders.Order) []int64 {
	var ids []int64
	for _, o := range list {
		ids = append(ids, o.ID)
	}
	return ids
}

func TestUnknownParties(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			s := openStore(t, b.newDSN(t))
			items := []orders.Item{{SKU: "A", Quantity: 1}}
			if _, _, err := s.Create(ctx, orders.NewOrder{CustomerID: 101, MerchantID: 1, Items: items}); !errors.Is(err, orders.ErrUnknownCustomer) {
				t.Errorf("customer 101: err = %v, want ErrUnknownCustomer", err)
			}
			if _, _, err := s.Create(ctx, orders.NewOrder{CustomerID: 100, MerchantID: 0, Items: items}); !errors.Is(err, orders.ErrUnknownMerchant) {
				t.Errorf("merchant 0: err = %v, want ErrUnknownMerchant", err)
			}
			if _, _, err := s.Create(ctx, orders.NewOrder{CustomerID: 100, MerchantID: 100, Items: items}); err != nil {
				t.Errorf("customer 100, merchant 100: %v", err)
			}
		})
	}
}

// TestIdempotencyConcurrent sends the same keyed create from many
// goroutines at once: exactly one order exists afterwards and every caller
// gets it.
func TestIdempotencyConcurrent(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			dsn := b.newDSN(t)
			s := openStore(t, dsn)
			const n = 16
			for round := range 3 {
				key := fmt.Sprintf("key-%d", round)
				n0 := orders.NewOrder{CustomerID: 3, MerchantID: 4, Items: []orders.Item{{SKU: "A", Quantity: 1}},
					IdempotencyKey: key, Fingerprint: "fp-1"}
				var (
					wg      sync.WaitGroup
					start   = make(chan struct{})
					ids     = make([]int64, n)
					created = make([]bool, n)
					errs    = make([]error, n)
				)
				for i := range n {
					wg.Go(func() {
						<-start
						var o orders.Order
						o, created[i], errs[i] = s.Create(ctx, n0)
						ids[i] = o.ID
					})
				}
				close(start)
				wg.Wait()
				fresh := 0
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("caller %d: %v", i, errs[i])
					}
					if ids[i] != ids[0] {
						t.Fatalf("caller %d got order %d, caller 0 got %d", i, ids[i], ids[0])
					}
					if created[i] {
						fresh++
					}
				}
				if fresh != 1 {
					t.Errorf("round %d: %d callers saw created=true, want 1", round, fresh)
				}
				if got := queryInt(t, dsn, "SELECT COUNT(*) FROM orders WHERE idempotency_key = ?", key); got != 1 {
					t.Errorf("round %d: %d rows with the key, want 1", round, got)
				}
				n0.Fingerprint = "fp-2"
				if _, _, err := s.Create(ctx, n0); !errors.Is(err, orders.ErrIdempotencyMismatch) {
					t.Errorf("same key, other fingerprint: err = %v, want ErrIdempotencyMismatch", err)
				}
			}
			if got := queryInt(t, dsn, "SELECT COUNT(*) FROM orders"); got != 3 {
				t.Errorf("%d orders in all, want 3", got)
			}
		})
	}
}

// TestOptimisticConcurrency races two writers holding the same version:
// one wins, the other gets ErrVersionConflict, every round.
func TestOptimisticConcurrency(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			s := openStore(t, b.newDSN(t))
			o, _, err := s.Create(ctx, orders.NewOrder{CustomerID: 1, MerchantID: 1, Items: []orders.Item{{SKU: "A", Quantity: 1}}})
			if err != nil {
				t.Fatal(err)
			}
			version := o.Version
			for round := range 10 {
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					errs  [2]error
					res   [2]orders.Order
				)
				for w := range 2 {
					wg.Go(func() {
						<-start
						res[w], errs[w] = s.Update(ctx, o.ID, version, orders.OrderUpdate{Destination: ptr(fmt.Sprintf("writer %d round %d", w, round))})
					})
				}
				close(start)
				wg.Wait()
				ok, conflict := 0, 0
				for w := range 2 {
					switch {
					case errs[w] == nil:
						ok++
						version = res[w].Version
					case errors.Is(errs[w], orders.ErrVersionConflict):
						conflict++
					default:
						t.Fatalf("round %d writer %d: %v", round, w, errs[w])
					}
				}
				if ok != 1 || conflict != 1 {
					t.Fatalf("round %d: %d won, %d conflicted; want 1 and 1", round, ok, conflict)
				}
			}
			if got, _ := s.Get(ctx, o.ID); got.Version != 11 {
				t.Errorf("final version %d, want 11", got.Version)
			}
		})
	}
}

// TestConcurrentMigrations opens one fresh database from many stores at
// once: all succeed and the schema and seed data exist exactly once.
func TestConcurrentMigrations(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dsn := b.newDSN(t)
			const n = 6
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					s, err := store.Open(ctx, dsn)
					if err == nil {
						err = s.Close()
					}
					errs[i] = err
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("opener %d: %v", i, err)
				}
			}
			for q, want := range map[string]int64{
				"SELECT COUNT(*) FROM schema_version": 2,
				"SELECT COUNT(*) FROM customers":      orders.SeedCustomers,
				"SELECT COUNT(*) FROM merchants":      orders.SeedMerchants,
			} {
				if got := queryInt(t, dsn, q); got != want {
					t.Errorf("%s = %d, want %d", q, got, want)
				}
			}
		})
	}
}

// TestContextBoundsCalls: a call whose context has ended returns an
// error at once instead of blocking.
func TestContextBoundsCalls(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, b.newDSN(t))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, _, err := s.Create(ctx, orders.NewOrder{CustomerID: 1, MerchantID: 1, Items: []orders.Item{{SKU: "A", Quantity: 1}}}); err == nil {
				t.Error("Create with a cancelled context succeeded")
			}
			if _, err := s.Get(ctx, 1); err == nil || errors.Is(err, orders.ErrNotFound) {
				t.Errorf("Get with a cancelled context: err = %v, want a context error", err)
			}
		})
	}
}
