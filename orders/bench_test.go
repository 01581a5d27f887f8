package orders_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/orders"
	"zerodrop.dev/zerodrop/orders/store"
)

// API throughput over loopback HTTP (keep-alive), parallel:
// go test -run '^$' -bench API ./orders/
func BenchmarkAPI(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		var s orders.Store
		if name == "sqlite" {
			s, _ = openSQLite(b)
		} else {
			_, url := postgresSchemaURL(b)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var err error
			s, err = store.Open(ctx, url)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
		}
		srv := server(b, s, orders.Options{})
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		call := func(b *testing.B, method, path, body string, want int) {
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
			}
		}
		b.Run(name+"/create", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call(b, "POST", "/logistics/orders", `{"items":[{"sku":"BOX","quantity":2}]}`, 201)
				}
			})
		})
		b.Run(name+"/get", func(b *testing.B) {
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call(b, "GET", fmt.Sprintf("/logistics/orders/%d", 1+n.Add(1)%50), "", 200)
				}
			})
		})
	}
}
