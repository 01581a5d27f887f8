package load

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// fakeOrders is a small in-test stand-in for the orders API of `zerodrop
// serve`, with ways to misbehave.
type fakeOrders struct {
	mu     sync.Mutex
	orders map[int64]*fakeOrder
	keys   map[string]int64
	nextID int64
	// dropEvery acknowledges every Nth write without keeping it.
	dropEvery int
	// ignoreKeys makes a new order for every create, key or not.
	ignoreKeys bool
	// failFirstCreate commits the first create of each key, then answers 503
	// (the response is lost; the client retries).
	failFirstCreate bool
	writes          int
	seenKey         map[string]bool
}

type fakeOrder struct {
	ID          int64  `json:"id"`
	Version     int64  `json:"version"`
	Destination string `json:"destination"`
}

func newFakeOrders() *fakeOrders {
	return &fakeOrders{orders: map[int64]*fakeOrder{}, keys: map[string]int64{}, seenKey: map[string]bool{}}
}

func (f *fakeOrders) drop() bool {
	f.writes++
	return f.dropEvery > 0 && f.writes%f.dropEvery == 0
}

func (f *fakeOrders) handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /logistics/orders", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Destination string `json:"destination"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			reply(w, 400, map[string]any{"error": map[string]string{"code": "bad_json"}})
			return
		}
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		defer f.mu.Unlock()
		if id, ok := f.keys[key]; ok && !f.ignoreKeys {
			reply(w, 200, f.orders[id])
			return
		}
		f.nextID++
		o := &fakeOrder{ID: f.nextID, Version: 1, Destination: body.Destination}
		if !f.drop() {
			f.orders[o.ID] = o
			f.keys[key] = o.ID
		}
		if f.failFirstCreate && !f.seenKey[key] {
			f.seenKey[key] = true
			reply(w, 503, map[string]any{"error": map[string]string{"code": "unavailable"}})
			return
		}
		reply(w, 201, o)
	})
	get := func(r *http.Request) (*fakeOrder, bool) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		o, ok := f.orders[id]
		return o, ok
	}
	mux.HandleFunc("GET /logistics/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if o, ok := get(r); ok {
			reply(w, 200, o)
			return
		}
		reply(w, 404, map[string]any{"error": map[string]string{"code": "not_found"}})
	})
	update := func(w http.ResponseWriter, r *http.Request, checkVersion bool) {
		var body struct {
			Version int64 `json:"version"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		defer f.mu.Unlock()
		o, ok := get(r)
		if !ok {
			reply(w, 404, map[string]any{"error": map[string]string{"code": "not_found"}})
			return
		}
		if checkVersion && body.Version != o.Version {
			reply(w, 409, map[string]any{"error": map[string]string{"code": "stale"}})
			return
		}
		next := *o
		next.Version++
		if !f.drop() {
			*o = next
		}
		reply(w, 200, next)
	}
	mux.HandleFunc("PUT /logistics/orders/{id}", func(w http.ResponseWriter, r *http.Request) { update(w, r, true) })
	mux.HandleFunc("PUT /logistics/orders/{id}/delivery", func(w http.ResponseWriter, r *http.Request) { update(w, r, false) })
	mux.HandleFunc("GET /logistics/orders/today", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		f.mu.Lock()
		defer f.mu.Unlock()
		list := []*fakeOrder{}
		for id := f.nextID; id > 0 && len(list) < limit; id-- {
			if o, ok := f.orders[id]; ok {
				list = append(list, o)
			}
		}
		reply(w, 200, map[string]any{"count": len(list), "orders": list})
	})
	return mux
}

// runOrders drives the orders workload against f and verifies the ledger.
func runOrders(t *testing.T, f *fakeOrders) (*results.Result, *results.Verification) {
	t.Helper()
	srv := httptest.NewServer(f.handler())
	defer srv.Close()
	ledger := NewLedger()
	w, err := NewOrders([]string{srv.URL}, ledger)
	if err != nil {
		t.Fatal(err)
	}
	w.ThinkFn = nil
	w.RetryPause = time.Millisecond
	r, err := NewRunner(Config{Workload: w, Model: Closed, Profile: Constant{4}, Duration: 400 * time.Millisecond, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ledger.Verify(ctx, VerifyOptions{Base: srv.URL, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if v.Checked == 0 {
		t.Fatal("nothing was verified")
	}
	return res, v
}

func TestOrdersSessionAgainstCorrectService(t *testing.T) {
	res, v := runOrders(t, newFakeOrders())
	if len(v.Lost) != 0 || len(v.Duplicates) != 0 || v.Errors != 0 {
		t.Fatalf("a correct service shows lost=%v duplicates=%v errors=%d", v.Lost, v.Duplicates, v.Errors)
	}
	// Every session is 8 requests: today, create, delivery, update, create, today x3.
	c := res.Totals.Counts
	// Per session: 2 creates (201) and 6 other requests (200).
	if c["201"] == 0 || c["200"] < 2*c["201"] {
		t.Errorf("unexpected mix %v", c)
	}
	if res.Totals.Errors != 0 || c["409"] != 0 {
		t.Errorf("errors or stale writes against a correct service: %v", c)
	}
}

func TestLedgerCatchesDroppedWrites(t *testing.T) {
	f := newFakeOrders()
	f.dropEvery = 7
	_, v := runOrders(t, f)
	if len(v.Lost) == 0 {
		t.Fatal("a store that drops every 7th write was not caught")
	}
	var missing, older int
	for _, l := range v.Lost {
		if l.FoundVersion < 0 {
			missing++
		} else if l.FoundVersion < l.AckedVersion {
			older++
		} else {
			t.Errorf("reported a write that is not lost: %+v", l)
		}
	}
	if missing == 0 || older == 0 {
		t.Errorf("want both missing orders and stale versions, got %d missing %d older", missing, older)
	}
}

func TestLedgerCatchesDuplicates(t *testing.T) {
	t.Run("service ignores idempotency keys", func(t *testing.T) {
		f := newFakeOrders()
		f.failFirstCreate, f.ignoreKeys = true, true
		res, v := runOrders(t, f)
		if len(v.Duplicates) == 0 {
			t.Fatal("retried creates made duplicates and none was reported")
		}
		for _, d := range v.Duplicates {
			if len(d.IDs) < 2 || strings.TrimSpace(d.Key) == "" {
				t.Errorf("bad duplicate %+v", d)
			}
		}
		if res.Totals.Counts["503"] == 0 {
			t.Error("the lost responses were not counted as 503")
		}
	})
	t.Run("service honours idempotency keys", func(t *testing.T) {
		f := newFakeOrders()
		f.failFirstCreate = true
		_, v := runOrders(t, f)
		if len(v.Duplicates) != 0 || len(v.Lost) != 0 {
			t.Fatalf("false alarm: duplicates %v lost %v", v.Duplicates, v.Lost)
		}
	})
}
