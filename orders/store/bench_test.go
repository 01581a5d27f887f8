package store_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"zerodrop.dev/zerodrop/orders"
)

// Store throughput, parallel: go test -run '^$' -bench . ./orders/store/
func BenchmarkStore(b *testing.B) {
	dsns := map[string]func(b *testing.B) string{
		"sqlite":   func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "bench.db") },
		"postgres": func(b *testing.B) string { return postgresDSN(b) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name+"/create", func(b *testing.B) {
			s := openStore(b, dsns[name](b))
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					_, _, err := s.Create(ctxT(b), orders.NewOrder{CustomerID: 1 + i%100, MerchantID: 1 + i%97,
						Items: []orders.Item{{SKU: "BOX", Quantity: 1}}, IdempotencyKey: fmt.Sprint("k", i), Fingerprint: "fp"})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(name+"/get", func(b *testing.B) {
			s := openStore(b, dsns[name](b))
			var ids []int64
			for range 100 {
				o, _, err := s.Create(ctxT(b), orders.NewOrder{CustomerID: 1, MerchantID: 1, Items: []orders.Item{{SKU: "BOX", Quantity: 1}}})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, o.ID)
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctxT(b), ids[n.Add(1)%100]); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
