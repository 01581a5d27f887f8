package drain_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

func TestPreStopConcurrentAndRepeated(t *testing.T) {
	const delay = 300 * time.Millisecond
	r := startServer(t, okHandler(), drain.WithDelay(delay), drain.WithReadyOnListen(),
		drain.WithPreStopPath("/prestop"), drain.WithHealthPath("/ready"))
	waitFor(t, time.Second, "ready", r.s.Ready)
	base := "http://" + r.addr

	req, _ := http.NewRequest(http.MethodPut, base+"/prestop", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !r.s.Ready() {
		t.Fatalf("PUT /prestop = %d ready=%v, want 405 and no drain", resp.StatusCode, r.s.Ready())
	}

	start := time.Now()
	var wg sync.WaitGroup
	codes := make([]int, 6)
	ends := make([]time.Duration, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp *http.Response
			var err error
			if i%2 == 0 {
				resp, err = http.Get(base + "/prestop")
			} else {
				resp, err = http.Post(base+"/prestop", "text/plain", strings.NewReader("x"))
			}
			if err != nil {
				t.Error(err)
				return
			}
			var body struct{ Status string }
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			codes[i], ends[i] = resp.StatusCode, time.Since(start)
		}()
	}
	waitFor(t, time.Second, "draining", func() bool { return r.s.State() == drain.Draining })
	if code, _, _ := get(t, &http.Client{}, base+"/ready"); code != 503 {
		t.Fatalf("readiness during preStop = %d, want 503", code)
	}
	wg.Wait()
	for i := range codes {
		// All calls share one deadline: none returns before the delay,
		// none waits a second delay.
		if codes[i] != 200 || ends[i] < delay || ends[i] > 2*delay+time.Second {
			t.Errorf("preStop call %d: %d after %s, want 200 after ~%s", i, codes[i], ends[i], delay)
		}
	}
	// A repeated call after the delay returns at once.
	t0 := time.Now()
	resp, err = http.Get(base + "/prestop")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || time.Since(t0) > delay/2 {
		t.Fatalf("repeated preStop: %d after %s, want 200 at once", resp.StatusCode, time.Since(t0))
	}
	// The server still serves until the stop signal (here: ctx).
	if r.s.State() != drain.Draining {
		t.Fatalf("state %s after preStop, want draining until the signal", r.s.State())
	}
	r.cancel()
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if rep := r.s.Report(); rep.DelayAfterTrigger >= delay/2 || rep.Trigger != "prestop" {
		t.Fatalf("report %+v: delay served again after the trigger", rep)
	}
}
