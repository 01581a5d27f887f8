package results

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
)

// TransportClass names a request that got no HTTP status.
type TransportClass string

// The transport classes, kept apart because each points at a different
// cause during a rollout.
const (
	// Refused: the connection was refused (nothing listening).
	Refused TransportClass = "refused"
	// Reset: the peer reset the connection (RST).
	Reset TransportClass = "reset"
	// EOF: the peer closed the connection with the request outstanding.
	EOF TransportClass = "eof"
	// TimeoutConnect: no connection within the connect timeout.
	TimeoutConnect TransportClass = "timeout-connect"
	// TimeoutResponse: connected, but no complete response within the
	// response timeout.
	TimeoutResponse TransportClass = "timeout-response"
	// Other: any other failure (malformed response, DNS, TLS...).
	Other TransportClass = "other"
)

// TransportClasses lists every transport class in display order.
var TransportClasses = []TransportClass{Refused, Reset, EOF, TimeoutConnect, TimeoutResponse, Other}

// StatusKey is the outcome key of an HTTP status code ("200", "502").
func StatusKey(code int) string { return strconv.Itoa(code) }

// IsStatus reports whether key is an HTTP status code key.
func IsStatus(key string) bool {
	return len(key) == 3 && key[0] >= '1' && key[0] <= '9' && key[1] >= '0' && key[1] <= '9' && key[2] >= '0' && key[2] <= '9'
}

// ParseOutcome checks an outcome key: a three-digit status code or a
// transport class. It returns the key back for convenience.
func ParseOutcome(key string) (string, error) {
	if IsStatus(key) {
		return key, nil
	}
	for _, tc := range TransportClasses {
		if string(tc) == key {
			return key, nil
		}
	}
	return "", fmt.Errorf("outcome %q is neither a status code (100-999) nor a transport class", key)
}

// IsError reports whether an outcome counts as a failed request: every
// transport class and every 5xx status. A 4xx is the service answering a
// client mistake (a stale write's 409 is the API working), so it is counted
// by code but is not an error.
func IsError(key string) bool {
	if IsStatus(key) {
		return key[0] >= '5'
	}
	return true
}

// ClassifyError maps the error of a failed HTTP exchange to its transport
// class. connected tells whether a connection to the server had been
// obtained when the error happened (from net/http/httptrace GotConn); it
// separates a connect timeout from a response timeout when the error itself
// does not say (a context deadline, a client timeout).
//
// It looks at real errors: syscall.ECONNREFUSED, ECONNRESET/EPIPE, io.EOF and
// io.ErrUnexpectedEOF, and net.Error timeouts during dial or afterwards.
func ClassifyError(err error, connected bool) TransportClass {
	if err == nil {
		return Other
	}
	var op *net.OpError
	isDial := errors.As(err, &op) && op.Op == "dial"
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return Reset
	}
	if isTimeout(err) {
		if isDial || !connected {
			return TimeoutConnect
		}
		return TimeoutResponse
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return EOF
	}
	return Other
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
