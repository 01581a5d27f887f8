package drain

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthBody is the JSON body of the health endpoints.
type healthBody struct {
	Status string `json:"status"`
	State  string `json:"state"`
	// Waited is set by the preStop handler: how long the call blocked.
	Waited string `json:"waited,omitempty"`
	Error  string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, b healthBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(b) //nolint:errcheck // client went away
}

// onlyGET answers 405 to methods other than GET and HEAD (probes and
// load-balancer health checks use GET) and reports whether it did.
func (s *Server) onlyGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeJSON(w, http.StatusMethodNotAllowed, healthBody{Status: "error", State: s.State().String(),
		Error: "method " + r.Method + " not allowed: use GET"})
	return true
}

// ReadinessHandler answers 200 {"status":"ready"} in state Ready and 503
// otherwise: before SetReady and from the first moment of the drain. Point
// the readinessProbe and the ALB health check at it. Methods other than
// GET and HEAD get 405.
func (s *Server) ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.onlyGET(w, r) {
			return
		}
		st := s.State()
		if st == Ready {
			writeJSON(w, http.StatusOK, healthBody{Status: "ready", State: st.String()})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, healthBody{Status: "not ready", State: st.String()})
	})
}

// LivenessHandler answers 200 while the process serves, also while it
// drains, so that a livenessProbe never restarts a draining container; 503
// once Stopped. Methods other than GET and HEAD get 405.
func (s *Server) LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.onlyGET(w, r) {
			return
		}
		st := s.State()
		if st == Stopped {
			writeJSON(w, http.StatusServiceUnavailable, healthBody{Status: "stopped", State: st.String()})
			return
		}
		writeJSON(w, http.StatusOK, healthBody{Status: "alive", State: st.String()})
	})
}

// PreStopHandler serves a lifecycle.preStop.httpGet hook, for images without
// a shell. GET or POST starts the drain (readiness fails at once) and blocks
// until the delay has elapsed since the drain started, then answers 200.
// When SIGTERM follows, Serve only waits for what is left of the delay, so
// the delay is not served twice. Concurrent and repeated calls share the
// same deadline. Other methods get 405.
func (s *Server) PreStopHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeJSON(w, http.StatusMethodNotAllowed, healthBody{Status: "error", State: s.State().String(),
				Error: "method " + r.Method + " not allowed: use GET or POST"})
			return
		}
		start := time.Now()
		deadline := s.beginDrain("prestop")
		if left := time.Until(deadline); left > 0 {
			t := time.NewTimer(left)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.stopped:
			case <-r.Context().Done():
				return
			}
		}
		writeJSON(w, http.StatusOK, healthBody{Status: "delay elapsed", State: s.State().String(),
			Waited: time.Since(start).Round(time.Millisecond).String()})
	})
}

// adminServer builds the separate health (and metrics) server.
func (s *Server) adminServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle(AdminReadyPath, s.ReadinessHandler())
	mux.Handle(AdminLivePath, s.LivenessHandler())
	mux.Handle(AdminPreStopPath, s.PreStopHandler())
	if s.cfg.adminGatherer != nil {
		mux.Handle(AdminMetricsPath, promhttp.HandlerFor(s.cfg.adminGatherer, promhttp.HandlerOpts{}))
	}
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
	}
}
