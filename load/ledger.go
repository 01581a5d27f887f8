package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Ledger records every acknowledged write (order id -> highest acknowledged
// version) and which ids each idempotency key produced. Its memory grows
// with the number of orders written, so it is kept only with --verify.
type Ledger struct {
	mu    sync.Mutex
	acked map[string]int64
	keys  map[string]map[string]bool
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{acked: map[string]int64{}, keys: map[string]map[string]bool{}}
}

// Ack records that the service acknowledged version of order id.
func (l *Ledger) Ack(id string, version int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if version > l.acked[id] {
		l.acked[id] = version
	} else if _, ok := l.acked[id]; !ok {
		l.acked[id] = version
	}
}

// AckCreate records an acknowledged create made with an idempotency key.
func (l *Ledger) AckCreate(key, id string, version int64) {
	l.Ack(id, version)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys[key] == nil {
		l.keys[key] = map[string]bool{}
	}
	l.keys[key][id] = true
}

// Len is the number of orders acknowledged.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Base is the service base URL.
	Base string
	// Concurrency bounds parallel read-backs (default 8).
	Concurrency int
	// Client sends the read-backs (its requests are not part of the run's
	// results). Default: a new client.
	Client *Client
}

// Verify reads every acknowledged order back and reports lost writes (the
// order is missing, or its version is older than acknowledged) and
// duplicates (one idempotency key, several orders: seen in acknowledged
// responses, or among the orders the today listing shows).
func (l *Ledger) Verify(ctx context.Context, opts VerifyOptions) (*results.Verification, error) {
	base := strings.TrimRight(opts.Base, "/")
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	c := opts.Client
	if c == nil {
		c = NewClient(ClientOptions{MaxConns: opts.Concurrency})
		defer c.Close()
	}
	l.mu.Lock()
	ids := make([]string, 0, len(l.acked))
	want := make(map[string]int64, len(l.acked))
	for id, v := range l.acked {
		ids = append(ids, id)
		want[id] = v
	}
	keyIDs := map[string]map[string]bool{}
	for k, set := range l.keys {
		keyIDs[k] = map[string]bool{}
		for id := range set {
			keyIDs[k][id] = true
		}
	}
	l.mu.Unlock()
	sort.Strings(ids)

	v := &results.Verification{Lost: []results.LostWrite{}, Duplicates: []results.Duplicate{}}
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				rep := c.Do(ctx, Call{Method: http.MethodGet, URL: base + "/logistics/orders/" + url.PathEscape(id), Keep: true}, time.Time{})
				mu.Lock()
				switch {
				case rep.Aborted:
				case rep.Status == http.StatusNotFound || rep.Status == http.StatusGone:
					v.Checked++
					v.Lost = append(v.Lost, results.LostWrite{ID: id, AckedVersion: want[id], FoundVersion: -1})
				case rep.OK():
					doc, err := parseOrder(rep.Body)
					if err != nil {
						v.Errors++
						break
					}
					v.Checked++
					if doc.Version < want[id] {
						v.Lost = append(v.Lost, results.LostWrite{ID: id, AckedVersion: want[id], FoundVersion: doc.Version})
					}
				default:
					v.Errors++
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verifying writes: %w", err)
	}

	// Duplicates among the most recent orders the service lists.
	rep := c.Do(ctx, Call{Method: http.MethodGet, URL: base + "/logistics/orders/today?limit=500", Keep: true}, time.Time{})
	if rep.OK() {
		list, err := parseList(rep.Body)
		if err != nil {
			return nil, fmt.Errorf("verifying duplicates: %w", err)
		}
		v.Scanned = int64(len(list))
		for _, o := range list {
			key, ok := strings.CutPrefix(o.Destination, TagPrefix)
			if !ok {
				continue
			}
			if keyIDs[key] == nil {
				keyIDs[key] = map[string]bool{}
			}
			keyIDs[key][o.ID.String()] = true
		}
	} else if !rep.Aborted {
		v.Errors++
	}
	for key, set := range keyIDs {
		if len(set) < 2 {
			continue
		}
		d := results.Duplicate{Key: key}
		for id := range set {
			d.IDs = append(d.IDs, id)
		}
		sort.Strings(d.IDs)
		v.Duplicates = append(v.Duplicates, d)
	}
	sort.Slice(v.Lost, func(i, j int) bool { return v.Lost[i].ID < v.Lost[j].ID })
	sort.Slice(v.Duplicates, func(i, j int) bool { return v.Duplicates[i].Key < v.Duplicates[j].Key })
	return v, nil
}

// parseList reads the today listing: {"orders": [...]} or a bare array.
func parseList(body []byte) ([]orderDoc, error) {
	var wrapped struct {
		Orders []orderDoc `json:"orders"`
	}
	if err := json.Unmarshal(body, &wrapped); err == nil && wrapped.Orders != nil {
		return wrapped.Orders, nil
	}
	var list []orderDoc
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding order list: %w", err)
	}
	return list, nil
}

func parseOrder(body []byte) (orderDoc, error) {
	var doc orderDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return orderDoc{}, fmt.Errorf("decoding order: %w", err)
	}
	if doc.ID == "" {
		return orderDoc{}, fmt.Errorf("decoding order: no id")
	}
	return doc, nil
}
