package alb

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the load balancer's Prometheus metrics, named like the ALB's
// CloudWatch metrics and labelled by target_group ("" for requests no
// target group took, such as the default fixed 404).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	elb        map[string]*prometheus.CounterVec // by CloudWatch name
	target     map[string]*prometheus.CounterVec
	connErrors *prometheus.CounterVec
	trt        *prometheus.HistogramVec

	mu     sync.Mutex
	groups map[string]*tgMetrics
}

// tgMetrics are one target group's resolved series, so the data plane does
// no label lookups per request.
type tgMetrics struct {
	requests                        prometheus.Counter
	elb4xx, elb5xx, elb502, elb503  prometheus.Counter
	elb504, elb460                  prometheus.Counter
	target2xx, target3xx, target4xx prometheus.Counter
	target5xx                       prometheus.Counter
	connErrors                      prometheus.Counter
	responseTime                    prometheus.Observer
}

var elbCounters = []string{"HTTPCode_ELB_4XX_Count", "HTTPCode_ELB_5XX_Count", "HTTPCode_ELB_502_Count",
	"HTTPCode_ELB_503_Count", "HTTPCode_ELB_504_Count", "HTTPCode_ELB_460_Count"}

var targetCounters = []string{"HTTPCode_Target_2XX_Count", "HTTPCode_Target_3XX_Count",
	"HTTPCode_Target_4XX_Count", "HTTPCode_Target_5XX_Count"}

func newMetrics(lb *LoadBalancer, reg *prometheus.Registry) *metrics {
	lbl := []string{"target_group"}
	m := &metrics{
		reg:    reg,
		elb:    map[string]*prometheus.CounterVec{},
		target: map[string]*prometheus.CounterVec{},
		groups: map[string]*tgMetrics{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "RequestCount",
			Help: "Requests processed by the load balancer."}, lbl),
		connErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "TargetConnectionErrorCount",
			Help: "Connections to targets that could not be established."}, lbl),
		trt: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "TargetResponseTime",
			Help:    "Seconds from sending the request to a target until its response headers arrived.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, lbl),
	}
	reg.MustRegister(m.requests, m.connErrors, m.trt)
	for _, n := range elbCounters {
		m.elb[n] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: "Responses the load balancer generated itself (" + n + ")."}, lbl)
		reg.MustRegister(m.elb[n])
	}
	for _, n := range targetCounters {
		m.target[n] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: "Responses from targets passed through (" + n + ")."}, lbl)
		reg.MustRegister(m.target[n])
	}
	reg.MustRegister(&hostCollector{lb: lb,
		healthy:   prometheus.NewDesc("HealthyHostCount", "Targets considered healthy.", lbl, nil),
		unhealthy: prometheus.NewDesc("UnHealthyHostCount", "Targets considered unhealthy.", lbl, nil),
	})
	return m
}

func (m *metrics) forGroup(name string) *tgMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g, ok := m.groups[name]; ok {
		return g
	}
	g := &tgMetrics{
		requests:     m.requests.WithLabelValues(name),
		elb4xx:       m.elb["HTTPCode_ELB_4XX_Count"].WithLabelValues(name),
		elb5xx:       m.elb["HTTPCode_ELB_5XX_Count"].WithLabelValues(name),
		elb502:       m.elb["HTTPCode_ELB_502_Count"].WithLabelValues(name),
		elb503:       m.elb["HTTPCode_ELB_503_Count"].WithLabelValues(name),
		elb504:       m.elb["HTTPCode_ELB_504_Count"].WithLabelValues(name),
		elb460:       m.elb["HTTPCode_ELB_460_Count"].WithLabelValues(name),
		target2xx:    m.target["HTTPCode_Target_2XX_Count"].WithLabelValues(name),
		target3xx:    m.target["HTTPCode_Target_3XX_Count"].WithLabelValues(name),
		target4xx:    m.target["HTTPCode_Target_4XX_Count"].WithLabelValues(name),
		target5xx:    m.target["HTTPCode_Target_5XX_Count"].WithLabelValues(name),
		connErrors:   m.connErrors.WithLabelValues(name),
		responseTime: m.trt.WithLabelValues(name),
	}
	m.groups[name] = g
	return g
}

// count records one finished request.
func (g *tgMetrics) count(elbStatus, targetStatus int) {
	g.requests.Inc()
	if targetStatus == 0 {
		switch {
		case elbStatus == 460:
			g.elb460.Inc()
			g.elb4xx.Inc()
		case elbStatus >= 500:
			g.elb5xx.Inc()
			switch elbStatus {
			case 502:
				g.elb502.Inc()
			case 503:
				g.elb503.Inc()
			case 504:
				g.elb504.Inc()
			}
		case elbStatus >= 400:
			g.elb4xx.Inc()
		}
		return
	}
	switch targetStatus / 100 {
	case 2:
		g.target2xx.Inc()
	case 3:
		g.target3xx.Inc()
	case 4:
		g.target4xx.Inc()
	case 5:
		g.target5xx.Inc()
	}
}

// hostCollector reports HealthyHostCount and UnHealthyHostCount at scrape time.
type hostCollector struct {
	lb                 *LoadBalancer
	healthy, unhealthy *prometheus.Desc
}

func (c *hostCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.unhealthy
}

func (c *hostCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.lb.groupList() {
		h, u := g.hostCounts()
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, float64(h), g.name)
		ch <- prometheus.MustNewConstMetric(c.unhealthy, prometheus.GaugeValue, float64(u), g.name)
	}
}
