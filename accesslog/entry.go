// Package accesslog writes and reads Application Load Balancer access logs.
//
// One line per request, space separated, in the field order AWS documents
// (type, time, elb, client:port, target:port, the three processing times,
// status codes, byte counts, "request", "user_agent", TLS fields, target
// group ARN, "trace_id", ... "classification_reason"). Quoted fields are
// enclosed in double quotes. AWS only ever appends fields, so the Reader
// accepts lines with more fields than it knows (kept in Entry.Extra) and
// older lines with fewer (the missing ones read as absent).
//
// The emulator in package alb writes this format; zerodrop analyze reads
// real ALB logs (plain or gzip'd) with the same Reader.
package accesslog

import (
	"strings"
	"time"
)

// TimeLayout is the timestamp layout of the time and request_creation_time
// fields: RFC 3339 in UTC with microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Entry is one access-log line. String fields hold "" where the log has "-";
// processing times hold -1 where the ALB could not dispatch the request or
// got no response; status codes hold 0 where the log has "-".
type Entry struct {
	Type                   string    // http, https, h2, grpcs, ws, wss
	Time                   time.Time // when the load balancer generated the response
	ELB                    string    // load balancer resource id, e.g. app/name/0123456789abcdef
	Client                 string    // client ip:port
	Target                 string    // target ip:port, "" when no target answered
	RequestProcessingTime  float64   // seconds, -1 when not dispatched
	TargetProcessingTime   float64   // seconds, -1 when no response from a target
	ResponseProcessingTime float64   // seconds, -1 when no response from a target
	ELBStatusCode          int       // status the client received
	TargetStatusCode       int       // status the target returned, 0 when none
	ReceivedBytes          int64
	SentBytes              int64
	Request                string // "METHOD scheme://host:port/path PROTO"
	UserAgent              string
	SSLCipher              string
	SSLProtocol            string
	TargetGroupARN         string
	TraceID                string
	DomainName             string
	ChosenCertARN          string
	MatchedRulePriority    int // 0 for the default action, -1 on a rule evaluation error
	RequestCreationTime    time.Time
	ActionsExecuted        string // comma separated: forward, fixed-response, ...
	RedirectURL            string
	ErrorReason            string // see the Reason* constants
	TargetPortList         string // space separated ip:port list
	TargetStatusCodeList   string // space separated codes
	Classification         string
	ClassificationReason   string
	// Extra holds fields appended after classification_reason by newer ALB
	// versions, raw and unquoted, in order.
	Extra []string
}

// Error reasons the emulator writes in the error_reason field when it made
// the response itself because of the target. Real ALBs use this field for
// Lambda and authentication errors only; the emulator extends it so an
// analysis can tell the causes of an ELB 502/503/504 apart.
const (
	ReasonTargetConnectionRefused = "TargetConnectionRefused" // 502: connect refused or unreachable
	ReasonTargetConnectionError   = "TargetConnectionError"   // 502: other failure to connect
	ReasonTargetConnectionReset   = "TargetConnectionReset"   // 502: RST with the request outstanding
	ReasonTargetClosedConnection  = "TargetClosedConnection"  // 502: FIN with the request outstanding (keep-alive race)
	ReasonTargetMalformedResponse = "TargetMalformedResponse" // 502: unparsable response or headers > 32 KiB
	ReasonDeregistrationCut       = "TargetDeregistrationCut" // 502: deregistration delay ended in flight
	ReasonTargetConnectTimeout    = "TargetConnectTimeout"    // 504: no connection within the connect timeout
	ReasonTargetResponseTimeout   = "TargetResponseTimeout"   // 504: no data within the idle timeout
	ReasonNoRegisteredTargets     = "NoRegisteredTargets"     // 503: the rule's target groups have no targets
	ReasonClientClosed            = "ClientClosedConnection"  // 460: client went away first
)

// Transport outcome classes shared across zerodrop (see DESIGN.md).
const (
	ClassRefused         = "refused"
	ClassReset           = "reset"
	ClassEOF             = "eof"
	ClassTimeoutConnect  = "timeout-connect"
	ClassTimeoutResponse = "timeout-response"
	ClassOther           = "other"
)

// TransportClass returns the zerodrop outcome class of the target-side
// failure named by an error_reason value, or "" when the reason is not a
// target transport failure.
func TransportClass(errorReason string) string {
	switch errorReason {
	case ReasonTargetConnectionRefused:
		return ClassRefused
	case ReasonTargetConnectionReset:
		return ClassReset
	case ReasonTargetClosedConnection:
		return ClassEOF
	case ReasonTargetConnectTimeout:
		return ClassTimeoutConnect
	case ReasonTargetResponseTimeout:
		return ClassTimeoutResponse
	case ReasonTargetMalformedResponse, ReasonDeregistrationCut, ReasonTargetConnectionError:
		return ClassOther
	}
	return ""
}

// ELBGenerated reports whether the load balancer made the response itself
// (no target status code).
func (e *Entry) ELBGenerated() bool { return e.TargetStatusCode == 0 }

// RequestParts splits the request field into method, URL and protocol. For
// requests the ALB could not parse the log holds "- - -" and all three are
// "-".
func (e *Entry) RequestParts() (method, url, proto string) {
	method, rest, _ := strings.Cut(e.Request, " ")
	i := strings.LastIndexByte(rest, ' ')
	if i < 0 {
		return method, rest, ""
	}
	return method, rest[:i], rest[i+1:]
}

// TargetGroupName returns the name part of a target group ARN
// (arn:...:targetgroup/NAME/ID), or the whole value when it is not one.
func TargetGroupName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":targetgroup/")
	if !ok {
		return arn
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// Seconds converts d to the seconds value of a processing-time field,
// rounded to the millisecond precision the log carries. Negative durations
// mean "absent" and give -1.
func Seconds(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d.Round(time.Millisecond)/time.Millisecond) / 1000
}
