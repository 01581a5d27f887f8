package analyze

import "testing"

// FuzzParseKubeEvents: any input gives events or an error, never a panic,
// and every event it returns has a time and a kind.
func FuzzParseKubeEvents(f *testing.F) {
	f.Add([]byte(kubeEvents))
	f.Add([]byte(`{"kind":"Event","involvedObject":{"kind":"Node","name":"n1"},"reason":"NodeNotReady","lastTimestamp":"2026-03-02T10:00:00Z"}`))
	f.Add([]byte(`{"kind":"List","items":[null]}`))
	f.Add([]byte(`{"items":[{"eventTime":"2026-03-02T10:00:00.000001Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ParseKubeEvents(data)
		if err != nil {
			return
		}
		for i, e := range evs {
			if e.At.IsZero() || e.Event.Kind == "" {
				t.Fatalf("event %d without time or kind: %+v", i, e)
			}
			if i > 0 && e.At.Before(evs[i-1].At) {
				t.Fatalf("events out of order at %d", i)
			}
		}
	})
}
