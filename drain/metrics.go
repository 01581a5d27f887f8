package drain

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names exported by Server.Collector.
const (
	MetricState               = "zerodrop_drain_state"
	MetricInFlight            = "zerodrop_drain_in_flight_requests"
	MetricOpenConnections     = "zerodrop_drain_open_connections"
	MetricServedWhileDraining = "zerodrop_drain_requests_served_while_draining_total"
	MetricConnsRetired        = "zerodrop_drain_connections_retired_total"
	MetricRequestsCut         = "zerodrop_drain_requests_cut_total"
	MetricConnsForceClosed    = "zerodrop_drain_connections_force_closed_total"
	MetricDrainDuration       = "zerodrop_drain_duration_seconds"
)

type collector struct {
	s                                      *Server
	state, inFlight, open, served, retired *prometheus.Desc
	cut, forced, duration                  *prometheus.Desc
}

// Collector returns a prometheus.Collector with the drain metrics:
//
//	zerodrop_drain_state{state}                              1 for the current state, 0 for the others
//	zerodrop_drain_in_flight_requests                        application requests running now
//	zerodrop_drain_open_connections                          connections open on the main listener
//	zerodrop_drain_requests_served_while_draining_total      requests started after the drain began
//	zerodrop_drain_connections_retired_total                 connections closed gracefully during the drain
//	zerodrop_drain_requests_cut_total                        requests cut by a forced close
//	zerodrop_drain_connections_force_closed_total            active connections closed by force
//	zerodrop_drain_duration_seconds                          last drain, start to last connection closed (0 before)
func (s *Server) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		s:        s,
		state:    d(MetricState, "Lifecycle state of the server: 1 for the current state.", "state"),
		inFlight: d(MetricInFlight, "Application requests being served."),
		open:     d(MetricOpenConnections, "Connections open on the main listener."),
		served:   d(MetricServedWhileDraining, "Application requests that started after the drain began."),
		retired:  d(MetricConnsRetired, "Connections closed gracefully during the drain."),
		cut:      d(MetricRequestsCut, "Requests still running when the server force-closed its connections."),
		forced:   d(MetricConnsForceClosed, "Active connections closed by force at the timeout or on a second signal."),
		duration: d(MetricDrainDuration, "Duration of the last drain, from its start to the last connection closed; 0 before."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.inFlight, c.open, c.served, c.retired, c.cut, c.forced, c.duration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	cur := c.s.State()
	for _, st := range allStates {
		v := 0.0
		if st == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, st.String())
	}
	snap := c.s.tr.snapshot()
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(snap.inFlight))
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(snap.open))
	ch <- prometheus.MustNewConstMetric(c.served, prometheus.CounterValue, float64(snap.served))
	ch <- prometheus.MustNewConstMetric(c.retired, prometheus.CounterValue, float64(snap.retired))
	ch <- prometheus.MustNewConstMetric(c.cut, prometheus.CounterValue, float64(c.s.cut.Load()))
	ch <- prometheus.MustNewConstMetric(c.forced, prometheus.CounterValue, float64(c.s.forcedConns.Load()))
	ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, float64(c.s.drainNanos.Load())/1e9)
}
