package drain_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"zerodrop.dev/zerodrop/drain"
)

const stateHelp = `# HELP zerodrop_drain_state Lifecycle state of the server: 1 for the current state.
# TYPE zerodrop_drain_state gauge
`

func stateLines(cur string) string {
	var b strings.Builder
	b.WriteString(stateHelp)
	for _, st := range []string{"draining", "ready", "starting", "stopped", "stopping"} {
		v := "0"
		if st == cur {
			v = "1"
		}
		b.WriteString(`zerodrop_drain_state{state="` + st + `"} ` + v + "\n")
	}
	return b.String()
}

func TestMetrics(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	r := startServer(t, b, drain.WithDelay(50*time.Millisecond), drain.WithTimeout(150*time.Millisecond))
	c := r.s.Collector()
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(stateLines("starting")), drain.MetricState); err != nil {
		t.Fatal(err)
	}
	r.s.SetReady()
	if err := testutil.CollectAndCompare(c, strings.NewReader(stateLines("ready")), drain.MetricState); err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := http.Get("http://" + r.addr + "/"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-b.started
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP zerodrop_drain_in_flight_requests Application requests being served.
# TYPE zerodrop_drain_in_flight_requests gauge
zerodrop_drain_in_flight_requests 1
# HELP zerodrop_drain_open_connections Connections open on the main listener.
# TYPE zerodrop_drain_open_connections gauge
zerodrop_drain_open_connections 1
`), drain.MetricInFlight, drain.MetricOpenConnections); err != nil {
		t.Fatal(err)
	}
	r.cancel()
	waitFor(t, time.Second, "draining", func() bool { return r.s.State() == drain.Draining })
	if err := testutil.CollectAndCompare(c, strings.NewReader(stateLines("draining")), drain.MetricState); err != nil {
		t.Fatal(err)
	}
	// A request that arrives during the delay counts as served while
	// draining (and is then cut with the other one).
	go func() {
		if resp, err := http.Get("http://" + r.addr + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-b.started
	r.wait(t, 5*time.Second)
	if err := testutil.CollectAndCompare(c, strings.NewReader(stateLines("stopped")+`
# HELP zerodrop_drain_requests_served_while_draining_total Application requests that started after the drain began.
# TYPE zerodrop_drain_requests_served_while_draining_total counter
zerodrop_drain_requests_served_while_draining_total 1
# HELP zerodrop_drain_requests_cut_total Requests still running when the server force-closed its connections.
# TYPE zerodrop_drain_requests_cut_total counter
zerodrop_drain_requests_cut_total 2
# HELP zerodrop_drain_connections_force_closed_total Active connections closed by force at the timeout or on a second signal.
# TYPE zerodrop_drain_connections_force_closed_total counter
zerodrop_drain_connections_force_closed_total 2
`), drain.MetricState, drain.MetricServedWhileDraining, drain.MetricRequestsCut, drain.MetricConnsForceClosed); err != nil {
		t.Fatal(err)
	}
	if d := gauge(t, r.s, drain.MetricDrainDuration); d < 0.2 {
		t.Fatalf("drain duration %v s, want >= delay+timeout (0.2 s)", d)
	}
}

func TestAdminListener(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := startServer(t, okHandler(), drain.WithAdminAddr("127.0.0.1:0"), drain.WithAdminMetrics(reg),
		drain.WithDelay(200*time.Millisecond))
	reg.MustRegister(r.s.Collector())
	waitFor(t, 2*time.Second, "admin listener", func() bool { return r.s.AdminAddr() != nil })
	admin := "http://" + r.s.AdminAddr().String()
	c := &http.Client{}
	if code, _, _ := get(t, c, admin+drain.AdminReadyPath); code != 503 {
		t.Fatalf("admin readiness before SetReady = %d, want 503", code)
	}
	r.s.SetReady()
	if code, _, _ := get(t, c, admin+drain.AdminReadyPath); code != 200 {
		t.Fatalf("admin readiness = %d, want 200", code)
	}
	// Health is not mounted on the main listener unless asked.
	if code, body, _ := get(t, c, "http://"+r.addr+drain.AdminReadyPath); code != 200 || body != "ok" {
		t.Fatalf("main listener %s = %d %q, want the application", drain.AdminReadyPath, code, body)
	}
	_, body, _ := get(t, c, admin+drain.AdminMetricsPath)
	if !strings.Contains(body, `zerodrop_drain_state{state="ready"} 1`) {
		t.Fatalf("admin metrics lack the state:\n%s", body)
	}
	r.cancel()
	waitFor(t, time.Second, "draining", func() bool { return r.s.State() == drain.Draining })
	if code, _, _ := get(t, c, admin+drain.AdminReadyPath); code != 503 {
		t.Fatalf("admin readiness while draining = %d, want 503", code)
	}
	if code, _, _ := get(t, c, admin+drain.AdminLivePath); code != 200 {
		t.Fatalf("admin liveness while draining = %d, want 200", code)
	}
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(admin + drain.AdminLivePath); err == nil {
		t.Fatal("admin listener open after Serve returned")
	}
}

// gauge reads one unlabelled metric from s's collector.
func gauge(t *testing.T, s *drain.Server, name string) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 32)
	s.Collector().Collect(ch)
	close(ch)
	for m := range ch {
		if strings.Contains(m.Desc().String(), `"`+name+`"`) {
			return testutil.ToFloat64(constCollector{m})
		}
	}
	t.Fatalf("metric %s not collected", name)
	return 0
}

type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }
