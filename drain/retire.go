package drain

import (
	"bufio"
	"net"
	"net/http"
)

// retiringWriter adds "Connection: close" to a response whose header is
// written while the server drains, also when the request began before the
// drain: every connection that answers during the delay is then retired by
// the client after a complete response, none is left idle for the load
// balancer to race against.
type retiringWriter struct {
	http.ResponseWriter
	s           *Server
	wroteHeader bool
}

func (w *retiringWriter) WriteHeader(code int) {
	if !w.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.wroteHeader = true
		if w.s.State() >= Draining {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *retiringWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming handlers working through the wrapper.
func (w *retiringWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack keeps protocol upgrades (WebSocket) working through the wrapper.
func (w *retiringWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *retiringWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
