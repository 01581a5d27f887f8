package load

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Orders is the seed's session against the orders API of `zerodrop serve`:
// today's orders, a new order, a delivery update, an order update, another
// new order, today's orders three times; then think time. Writes carry an
// Idempotency-Key and a failed write is retried once with the same key, as
// a careful client would. Acknowledged writes go to the Ledger, when set.
type Orders struct {
	// Bases are the service base URLs (the API lives under /logistics).
	Bases []string
	// TodayLimit is the ?limit= of the today listing (default 20).
	TodayLimit int
	// ThinkFn is the pause after a session (default 10 s ±50%).
	ThinkFn func(*rand.Rand) time.Duration
	// Ledger, when set, records acknowledged writes for Verify.
	Ledger *Ledger
	// RetryPause is the pause before retrying a failed write (default 100 ms).
	RetryPause time.Duration
	next       atomic.Uint64
}

// TagPrefix starts the destination of every order the orders workload
// creates; the rest is the idempotency key, so duplicates can be found by
// listing orders.
const TagPrefix = "zerodrop-load/"

// NewOrders checks the base URLs and builds the orders workload.
func NewOrders(bases []string, ledger *Ledger) (*Orders, error) {
	if err := checkURLs(bases); err != nil {
		return nil, err
	}
	trimmed := make([]string, len(bases))
	for i, b := range bases {
		trimmed[i] = strings.TrimRight(b, "/")
	}
	return &Orders{Bases: trimmed, TodayLimit: 20, ThinkFn: ThinkTime(10*time.Second, 0.5), Ledger: ledger, RetryPause: 100 * time.Millisecond}, nil
}

// Name implements Workload.
func (o *Orders) Name() string { return "orders" }

// DefaultConnections is PerSession: each simulated user keeps its own
// keep-alive connections across its requests and think time, as a browser.
func (o *Orders) DefaultConnections() Connections { return PerSession }

// Think implements Workload.
func (o *Orders) Think(rng *rand.Rand) time.Duration {
	if o.ThinkFn == nil {
		return 0
	}
	return o.ThinkFn(rng)
}

// orderDoc is the part of an order the workload reads.
type orderDoc struct {
	ID          flexID `json:"id"`
	Version     int64  `json:"version"`
	Destination string `json:"destination"`
}

// Session implements Workload.
func (o *Orders) Session(ctx context.Context, s *Session) {
	base := o.Bases[int((o.next.Add(1)-1)%uint64(len(o.Bases)))]
	today := Call{Method: http.MethodGet, URL: fmt.Sprintf("%s/logistics/orders/today?limit=%d", base, o.TodayLimit)}
	steps := []func() bool{
		func() bool { return !s.Do(ctx, today).Aborted },
	}
	var first orderDoc
	var haveFirst bool
	steps = append(steps,
		func() bool {
			var ok bool
			first, ok = o.create(ctx, s, base)
			haveFirst = ok
			return ctx.Err() == nil
		},
		func() bool {
			if !haveFirst {
				return true
			}
			body := map[string]any{"method": pick(s.Rand, "standard", "express", "pickup"), "status": pick(s.Rand, "dispatched", "in_transit")}
			if v, ok := o.write(ctx, s, http.MethodPut, base+"/logistics/orders/"+first.ID.String()+"/delivery", body); ok {
				o.ack(first.ID.String(), v.Version)
				if v.Version > 0 {
					first.Version = v.Version
				}
			}
			return ctx.Err() == nil
		},
		func() bool {
			if !haveFirst {
				return true
			}
			body := map[string]any{"version": first.Version, "items": items(s.Rand)}
			if v, ok := o.write(ctx, s, http.MethodPut, base+"/logistics/orders/"+first.ID.String(), body); ok {
				o.ack(first.ID.String(), v.Version)
			}
			return ctx.Err() == nil
		},
		func() bool { o.create(ctx, s, base); return ctx.Err() == nil },
		func() bool { return !s.Do(ctx, today).Aborted },
		func() bool { return !s.Do(ctx, today).Aborted },
		func() bool { return !s.Do(ctx, today).Aborted },
	)
	for _, step := range steps {
		if !step() {
			return
		}
	}
}

func pick(rng *rand.Rand, opts ...string) string { return opts[rng.IntN(len(opts))] }

func items(rng *rand.Rand) []map[string]any {
	n := 1 + rng.IntN(3)
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"sku": fmt.Sprintf("SKU-%04d", rng.IntN(10000)), "quantity": 1 + rng.IntN(5)}
	}
	return out
}

func newKey(rng *rand.Rand) string {
	var b [12]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return hex.EncodeToString(b[:])
}

func (o *Orders) create(ctx context.Context, s *Session, base string) (orderDoc, bool) {
	key := newKey(s.Rand)
	body := map[string]any{"items": items(s.Rand), "destination": TagPrefix + key}
	doc, ok := o.writeKey(ctx, s, http.MethodPost, base+"/logistics/orders", body, key)
	if !ok || doc.ID.String() == "" {
		return orderDoc{}, false
	}
	if o.Ledger != nil {
		o.Ledger.AckCreate(key, doc.ID.String(), doc.Version)
	}
	return doc, true
}

func (o *Orders) ack(id string, version int64) {
	if o.Ledger != nil && version > 0 {
		o.Ledger.Ack(id, version)
	}
}

func (o *Orders) write(ctx context.Context, s *Session, method, url string, body any) (orderDoc, bool) {
	return o.writeKey(ctx, s, method, url, body, newKey(s.Rand))
}

// writeKey sends a write with an idempotency key, retrying once with the
// same key after a failure that may not have reached the store (transport
// error or 5xx). It reports whether the write was acknowledged (2xx).
func (o *Orders) writeKey(ctx context.Context, s *Session, method, url string, body any, key string) (orderDoc, bool) {
	payload, err := json.Marshal(body)
	if err != nil {
		return orderDoc{}, false
	}
	call := Call{Method: method, URL: url, Body: payload, Keep: true, Header: http.Header{"Idempotency-Key": {key}}}
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return orderDoc{}, false
			case <-time.After(o.RetryPause):
			}
		}
		rep := s.Do(ctx, call)
		if rep.Aborted {
			return orderDoc{}, false
		}
		if rep.OK() {
			var doc orderDoc
			if err := json.Unmarshal(rep.Body, &doc); err != nil {
				return orderDoc{}, false
			}
			return doc, true
		}
		if rep.Status != 0 && rep.Status < 500 {
			return orderDoc{}, false // the service said no; retrying will not help
		}
	}
	return orderDoc{}, false
}

// flexID is an order id given as a JSON number or string.
type flexID string

// UnmarshalJSON accepts 42 or "42".
func (f *flexID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("order id %s: want a number or a string", b)
	}
	*f = flexID(n.String())
	return nil
}

func (f flexID) String() string { return string(f) }
