package report

import (
	"math/rand/v2"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// sampleRun builds a lab-like run of 120 s at 50 requests a second: a
// scale-down from 4 to 2 pods at 40 s, its events, series and predicted
// window. broken makes the removed pods stop before the ALB deregisters
// them: ALB-made 502s and resets from 41 s to 52 s, lost writes.
func sampleRun(t testing.TB, name string, broken bool) Run {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(len(name))))
	rec := results.NewRecorder(t0, results.RecorderOptions{Source: results.SourceLab, Meta: results.Meta{
		Version: "test", Workload: "orders", Model: "closed", Targets: []string{"http://127.0.0.1:18080"},
		Labels: map[string]string{"variant": name},
	}})
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rec.AddMark("scale-down 4→2", at(40), at(80))
	rec.Event(at(40), results.Event{Kind: results.EventScale, Source: results.EventSourceLab, Object: "deployment/orders", Message: "replicas 4 → 2", Attrs: map[string]string{"from": "4", "to": "2"}})
	for i, pod := range []string{"orders-3", "orders-4"} {
		rec.Event(at(40.2+float64(i)*0.1), results.Event{Kind: results.EventSIGTERM, Source: results.EventSourceLab, Object: "pod/" + pod, Message: "preStop, then SIGTERM"})
		rec.Event(at(55+float64(i)), results.Event{Kind: results.EventDeregister, Source: results.EventSourceLab, Object: "target/127.0.1." + string(rune('3'+i)) + ":8000", Message: "deregistered from orders-tg"})
	}
	rec.Event(at(90), results.Event{Kind: results.EventNodeDrain, Source: results.EventSourceLab, Object: "node/lab-3", Message: "consolidation drains the node"})
	rec.Point(results.SeriesHealthyTargets, "orders-tg", "targets", t0, 4)
	rec.Point(results.SeriesHealthyTargets, "orders-tg", "targets", at(55), 3)
	rec.Point(results.SeriesHealthyTargets, "orders-tg", "targets", at(56), 2)
	rec.Point(results.SeriesPodsReady, "orders", "pods", t0, 4)
	rec.Point(results.SeriesPodsReady, "orders", "pods", at(40.2), 2)
	rec.Point(results.SeriesNodes, "", "nodes", t0, 3)
	rec.Point(results.SeriesNodes, "", "nodes", at(92), 2)
	rec.Predict(at(40.2), at(56), results.Window{Name: "orders-3, orders-4 removed", Source: "check", Rule: "ZD003", Reason: "the app stops before the ALB deregisters it"})
	rec.SetConfig("deregistration_delay", "30s")
	rec.SetConfig("shutdown_delay", map[bool]string{true: "0s", false: "20s"}[broken])
	for ms := 0; ms < 120_000; ms += 20 {
		start := t0.Add(time.Duration(ms) * time.Millisecond)
		lat := time.Duration(5+rng.ExpFloat64()*15) * time.Millisecond
		outcome, fromLB := "200", false
		if ms%100 == 0 {
			outcome = "201"
		}
		s := float64(ms) / 1000
		if broken && s >= 41 && s < 52 {
			switch x := rng.IntN(10); {
			case x < 3:
				outcome, fromLB = "502", true
			case x == 3:
				outcome = string(results.Reset)
			}
		}
		if broken && s >= 60 && s < 60.2 {
			outcome, fromLB, lat = "504", true, 10*time.Second
		}
		if !broken && ms == 47_000 {
			outcome = "503"
		}
		rec.Record(results.Sample{Start: start, Latency: lat, Outcome: outcome, FromLB: fromLB})
	}
	r := rec.Finish(at(120))
	r.Verify = &results.Verification{Checked: 1200}
	if broken {
		r.Verify.Lost = []results.LostWrite{{ID: "812", AckedVersion: 2, FoundVersion: 1}, {ID: "901", AckedVersion: 1, FoundVersion: -1}}
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return Run{Name: name, Result: r}
}

func sampleRuns(t testing.TB) []Run {
	return []Run{sampleRun(t, "before", true), sampleRun(t, "after", false)}
}
