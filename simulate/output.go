package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"zerodrop.dev/zerodrop/load"
)

// Metrics exposes the simulator on Prometheus:
// zerodrop_simulate_demand, zerodrop_simulate_replicas_wanted,
// zerodrop_simulate_sessions_wanted, zerodrop_simulate_step,
// zerodrop_simulate_scale_errors_total{what="app"|"sessions"} and
// zerodrop_simulate_state_errors_total. A nil *Metrics records nothing.
type Metrics struct {
	demand, replicas, sessions, stepNo prometheus.Gauge
	scaleErrors                        *prometheus.CounterVec
	stateErrors                        prometheus.Counter
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		demand:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "zerodrop_simulate_demand", Help: "Demand of the step applied last, in [0,1]."}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zerodrop_simulate_replicas_wanted", Help: "App replicas the step applied last asks for."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zerodrop_simulate_sessions_wanted", Help: "Load sessions the step applied last asks for."}),
		stepNo:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "zerodrop_simulate_step", Help: "Index of the step applied last since the cycle started."}),
		scaleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zerodrop_simulate_scale_errors_total",
			Help: "Steps whose app replicas (what=app) or load sessions (what=sessions) could not be set."}, []string{"what"}),
		stateErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "zerodrop_simulate_state_errors_total", Help: "State ConfigMap writes that failed."}),
	}
	for _, c := range []prometheus.Collector{m.demand, m.replicas, m.sessions, m.stepNo, m.scaleErrors, m.stateErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering simulate metrics: %w", err)
		}
	}
	m.scaleErrors.WithLabelValues("app")
	m.scaleErrors.WithLabelValues("sessions")
	return m, nil
}

func (m *Metrics) step(p Point) {
	if m == nil {
		return
	}
	m.demand.Set(p.Demand)
	m.replicas.Set(float64(p.Replicas))
	m.sessions.Set(float64(p.Sessions))
	m.stepNo.Set(float64(p.Step))
}

func (m *Metrics) scaleError(err error) {
	if m == nil {
		return
	}
	what := "app"
	var se *stepError
	if errors.As(err, &se) {
		what = se.what
	}
	m.scaleErrors.WithLabelValues(what).Inc()
}

func (m *Metrics) stateError() {
	if m == nil {
		return
	}
	m.stateErrors.Inc()
}

// EMF writes one CloudWatch Embedded Metric Format line per step applied,
// in the seed's namespace appsimulator (load.EMFNamespace) without
// dimensions, as the seed's put-metric-data calls did: app_workers (the
// app's wanted replicas, the seed's name), sessions, load_workers (load
// pods, with a load Deployment) and demand.
type EMF struct {
	mu     sync.Mutex
	w      io.Writer
	perPod int
	err    error
}

// NewEMF writes EMF lines to w; perPod > 0 adds load_workers =
// ceil(sessions/perPod).
func NewEMF(w io.Writer, perPod int) *EMF { return &EMF{w: w, perPod: perPod} }

// Event writes the line of a step event and ignores the others.
func (e *EMF) Event(ev Event) {
	if ev.Kind != EventStep {
		return
	}
	doc := map[string]any{
		"app_workers": ev.Point.Replicas,
		"sessions":    ev.Point.Sessions,
		"demand":      ev.Point.Demand,
		"step":        ev.Point.Step,
	}
	metrics := []map[string]string{
		{"Name": "app_workers", "Unit": "Count"},
		{"Name": "sessions", "Unit": "Count"},
		{"Name": "demand", "Unit": "None"},
	}
	if e.perPod > 0 {
		doc["load_workers"] = LoadDeployment{PerPod: e.perPod}.Pods(ev.Point.Sessions)
		metrics = append(metrics, map[string]string{"Name": "load_workers", "Unit": "Count"})
	}
	doc["_aws"] = map[string]any{
		"Timestamp": ev.Time.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  load.EMFNamespace,
			"Dimensions": [][]string{{}},
			"Metrics":    metrics,
		}},
	}
	line, err := json.Marshal(doc)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil && e.err == nil {
		_, e.err = e.w.Write(append(line, '\n'))
	}
}

// Err returns the first write error.
func (e *EMF) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// EventLog writes events as lines: one JSON object per line (json), or
// words for people.
type EventLog struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// NewEventLog writes events to w, as JSON lines when asJSON.
func NewEventLog(w io.Writer, asJSON bool) *EventLog { return &EventLog{w: w, json: asJSON} }

// Event writes one event.
func (l *EventLog) Event(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		line, err := json.Marshal(ev)
		if err == nil {
			_, _ = l.w.Write(append(line, '\n'))
		}
		return
	}
	p := ev.Point
	ts := ev.Time.Format(time.TimeOnly)
	switch ev.Kind {
	case EventStart, EventResume:
		fmt.Fprintf(l.w, "%s %s cycle started %s, now at step %d", ts, ev.Kind, ev.Start.Format(time.RFC3339), p.Step)
	case EventStep:
		fmt.Fprintf(l.w, "%s step %d (+%s) demand %.3f replicas %d sessions %d", ts, p.Step, p.Offset, p.Demand, p.Replicas, p.Sessions)
		if ev.PrevReplicas >= 0 && ev.PrevReplicas != int32(p.Replicas) {
			fmt.Fprintf(l.w, " (app was %d)", ev.PrevReplicas)
		}
		if ev.Skipped > 0 {
			fmt.Fprintf(l.w, " [%d steps skipped]", ev.Skipped)
		}
	case EventError:
		fmt.Fprintf(l.w, "%s error at step %d: %s", ts, p.Step, ev.Error)
	case EventStop:
		fmt.Fprintf(l.w, "%s stop at step %d", ts, p.Step)
	default:
		fmt.Fprintf(l.w, "%s %s", ts, ev.Kind)
	}
	if ev.Detail != "" {
		fmt.Fprintf(l.w, " (%s)", ev.Detail)
	}
	fmt.Fprintln(l.w)
}
