package load

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// The seed's dashboards graph metrics named by status code in namespace
// appsimulator without dimensions: an EMF line publishes each count under
// that name with no dimension as well as with the workload dimension, and
// requests without a response also count as "000", curl's code for them.
func TestEMFKeepsTheSeedsMetricNames(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	var buf bytes.Buffer
	e := NewEMF(&buf, "orders")
	for i, outcome := range []string{"200", "200", "502", "504", "refused", "reset", "timeout-response"} {
		e.Request(&Call{}, results.Sample{Start: base.Add(time.Duration(i) * time.Millisecond), Latency: time.Millisecond, Outcome: outcome})
	}
	e.Tick(base.Add(2*time.Second), true)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("EMF lines: %q, want one", buf.String())
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil {
		t.Fatalf("EMF line %s: %v", lines[0], err)
	}
	var root map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &root); err != nil {
		t.Fatal(err)
	}
	if len(doc.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("CloudWatchMetrics: %+v", doc.AWS.CloudWatchMetrics)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "appsimulator" {
		t.Errorf("namespace %q, want appsimulator", d.Namespace)
	}
	hasEmpty, hasWorkload := false, false
	for _, set := range d.Dimensions {
		switch {
		case len(set) == 0:
			hasEmpty = true
		case slices.Equal(set, []string{"workload"}):
			hasWorkload = true
		}
		for _, k := range set {
			if _, ok := root[k]; !ok {
				t.Errorf("dimension %q has no member on the root", k)
			}
		}
	}
	if !hasEmpty || !hasWorkload {
		t.Errorf("dimension sets %v: want [] (the seed's dashboards) and [workload]", d.Dimensions)
	}
	if root["workload"] != "orders" {
		t.Errorf("workload %v, want orders", root["workload"])
	}
	want := map[string]float64{"200": 2, "502": 1, "504": 1, "refused": 1, "reset": 1, "timeout-response": 1, "000": 3}
	var names []string
	for _, m := range d.Metrics {
		names = append(names, m.Name)
		if m.Unit != "Count" {
			t.Errorf("metric %s unit %q, want Count", m.Name, m.Unit)
		}
	}
	for name, n := range want {
		if !slices.Contains(names, name) {
			t.Errorf("no metric %q among %v", name, names)
		}
		if root[name] != n {
			t.Errorf("%s = %v, want %v", name, root[name], n)
		}
	}
	if len(names) != len(want) {
		t.Errorf("metrics %v, want exactly %d", names, len(want))
	}
}

// A second with only HTTP answers has no "000" metric.
func TestEMFNoTransportMetricWithoutTransportErrors(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, "get")
	e.Request(&Call{}, results.Sample{Start: time.Unix(1_800_000_000, 0), Latency: time.Millisecond, Outcome: "502", FromLB: true})
	e.Tick(time.Unix(1_800_000_005, 0), true)
	if strings.Contains(buf.String(), `"000"`) {
		t.Errorf("EMF line %s has a 000 metric without a transport error", buf.String())
	}
}
