package drain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// One duration format in the JSON log: every duration is a Go duration
// string ("15s", "1.2ms"), never a number of nanoseconds next to strings.
func TestJSONLogDurationsAreGoStrings(t *testing.T) {
	var buf bytes.Buffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(&http.Server{Handler: http.NotFoundHandler()},
		WithDelay(20*time.Millisecond), WithTimeout(time.Second), WithEnv(nil), WithSignals(),
		WithLogger(slog.New(slog.NewJSONHandler(&syncWriter{w: &buf}, nil))), WithReadyOnListen())
	s.OnShutdown("noop", func(context.Context) error { return nil })
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	for s.State() != Ready {
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"delay", "timeout", "drain", "took"} {
			v, ok := line[k]
			if !ok {
				continue
			}
			seen++
			str, isStr := v.(string)
			if !isStr {
				t.Errorf("%s: %s = %v (%T), want a Go duration string", line["msg"], k, v, v)
				continue
			}
			if _, err := time.ParseDuration(str); err != nil {
				t.Errorf("%s: %s = %q: %v", line["msg"], k, str, err)
			}
		}
	}
	if seen < 4 {
		t.Errorf("only %d duration fields in the log:\n%s", seen, buf.String())
	}
}

// syncWriter serialises writes from the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
