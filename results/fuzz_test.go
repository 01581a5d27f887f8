package results

import (
	"bytes"
	"context"
	"os"
	"testing"
)

func contextDeadline() error { return context.DeadlineExceeded }

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes,
// decodes again and matches the JSON Schema.
func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	r := sampleResult(&testing.T{})
	if err := Encode(&buf, r); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	if v1, err := os.ReadFile("testdata/v1-load.json"); err == nil {
		f.Add(v1)
	}
	f.Add([]byte(`{"schema_version":1}`))
	f.Add([]byte(`{"schema_version":1,"source":"load","meta":{"tool":"z","version":"","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z"},"bucket_ms":1000,"timeline":[],"totals":{"requests":0,"errors":0,"error_rate":0,"counts":{}},"latency":{"count":0,"min_ms":0,"mean_ms":0,"p50_ms":0,"p90_ms":0,"p99_ms":0,"p999_ms":0,"max_ms":0}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"schema_version":1e400}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Unmarshal(data)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, r); err != nil {
			t.Fatalf("accepted result does not encode: %v", err)
		}
		if _, err := Unmarshal(out.Bytes()); err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if err := ValidateSchema(out.Bytes()); err != nil {
			t.Fatalf("accepted result fails the schema: %v", err)
		}
	})
}
