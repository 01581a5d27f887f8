package accesslog

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MinFields is the fewest fields a line must have (type through "request");
// fields after that which an older log lacks read as absent.
const MinFields = 13

// knownFields is the number of fields Entry names; later ones go to Extra.
const knownFields = 29

// maxLine bounds one log line.
const maxLine = 1 << 20

// ParseError is a line that could not be parsed. Reader.Next returns it and
// moves on, so a caller may count bad lines and continue.
type ParseError struct {
	Line  int    // 1-based line number in the input
	Field string // field name, "" when the line as a whole is bad
	Err   error
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("access log line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("access log line %d: field %s: %v", e.Line, e.Field, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Reader reads access-log lines, plain or gzip'd (detected from the first
// bytes; concatenated gzip members are read in sequence).
type Reader struct {
	sc   *bufio.Scanner
	line int
	gz   *gzip.Reader
}

// NewReader returns a Reader over r. It reads the first bytes of r to tell
// gzip from plain text.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	rd := &Reader{}
	magic, err := br.Peek(2)
	var src io.Reader = br
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip access log: %w", err)
		}
		rd.gz = gz
		src = gz
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading access log: %w", err)
	}
	rd.sc = bufio.NewScanner(src)
	rd.sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return rd, nil
}

// Next returns the next entry. Blank lines are skipped. At the end of the
// input it returns io.EOF. A malformed line gives a *ParseError; the next
// call continues with the following line.
func (r *Reader) Next() (*Entry, error) {
	for r.sc.Scan() {
		r.line++
		line := strings.TrimRight(r.sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := ParseLine(line)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Line = r.line
				return nil, pe
			}
			return nil, &ParseError{Line: r.line, Err: err}
		}
		return e, nil
	}
	if err := r.sc.Err(); err != nil {
		return nil, fmt.Errorf("reading access log after line %d: %w", r.line, err)
	}
	return nil, io.EOF
}

// Close releases the gzip decoder, if any. It does not close the source.
func (r *Reader) Close() error {
	if r.gz != nil {
		return r.gz.Close()
	}
	return nil
}

var fieldNames = [knownFields]string{
	"type", "time", "elb", "client:port", "target:port",
	"request_processing_time", "target_processing_time", "response_processing_time",
	"elb_status_code", "target_status_code", "received_bytes", "sent_bytes",
	"request", "user_agent", "ssl_cipher", "ssl_protocol", "target_group_arn",
	"trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
	"request_creation_time", "actions_executed", "redirect_url", "error_reason",
	"target:port_list", "target_status_code_list", "classification", "classification_reason",
}

// ParseLine parses one access-log line (without its newline).
func ParseLine(line string) (*Entry, error) {
	fields, err := splitFields(line)
	if err != nil {
		return nil, &ParseError{Err: err}
	}
	if len(fields) < MinFields {
		return nil, &ParseError{Err: fmt.Errorf("%d fields, want at least %d", len(fields), MinFields)}
	}
	get := func(i int) string {
		if i >= len(fields) {
			return ""
		}
		if fields[i] == "-" {
			return ""
		}
		return fields[i]
	}
	e := &Entry{
		Type: get(0), ELB: get(2), Client: get(3), Target: get(4),
		Request: get(12), UserAgent: get(13), SSLCipher: get(14), SSLProtocol: get(15),
		TargetGroupARN: get(16), TraceID: get(17), DomainName: get(18), ChosenCertARN: get(19),
		ActionsExecuted: get(22), RedirectURL: get(23), ErrorReason: get(24),
		TargetPortList: get(25), TargetStatusCodeList: get(26),
		Classification: get(27), ClassificationReason: get(28),
	}
	fail := func(i int, err error) error { return &ParseError{Field: fieldNames[i], Err: err} }
	if e.Time, err = parseTime(get(1)); err != nil {
		return nil, fail(1, err)
	}
	for i, p := range []*float64{&e.RequestProcessingTime, &e.TargetProcessingTime, &e.ResponseProcessingTime} {
		if *p, err = parseSeconds(get(5 + i)); err != nil {
			return nil, fail(5+i, err)
		}
	}
	if e.ELBStatusCode, err = parseStatus(get(8)); err != nil {
		return nil, fail(8, err)
	}
	if e.TargetStatusCode, err = parseStatus(get(9)); err != nil {
		return nil, fail(9, err)
	}
	if e.ReceivedBytes, err = parseCount(get(10)); err != nil {
		return nil, fail(10, err)
	}
	if e.SentBytes, err = parseCount(get(11)); err != nil {
		return nil, fail(11, err)
	}
	if s := get(20); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fail(20, fmt.Errorf("not an integer: %q", s))
		}
		e.MatchedRulePriority = n
	}
	if e.RequestCreationTime, err = parseTime(get(21)); err != nil {
		return nil, fail(21, err)
	}
	if len(fields) > knownFields {
		e.Extra = append([]string(nil), fields[knownFields:]...)
	}
	return e, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time: %q", s)
	}
	return t.UTC(), nil
}

func parseSeconds(s string) (float64, error) {
	if s == "" || s == "-1" {
		return -1, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v != v {
		return 0, fmt.Errorf("not a non-negative number of seconds or -1: %q", s)
	}
	return v, nil
}

func parseStatus(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 999 {
		return 0, fmt.Errorf("not an HTTP status code: %q", s)
	}
	return n, nil
}

func parseCount(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a byte count: %q", s)
	}
	return n, nil
}

// splitFields splits a line into fields, unquoting and unescaping quoted
// ones. A quote closes a quoted field only when followed by a space or the
// end of the line, so stray quotes inside real user agents survive.
func splitFields(line string) ([]string, error) {
	fields := make([]string, 0, 32)
	var sb strings.Builder
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		sb.Reset()
		if line[i] == '"' {
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				if c == '\\' && i+1 < len(line) {
					n := unescape(&sb, line[i:])
					i += n
					continue
				}
				if c == '"' && (i+1 == len(line) || line[i+1] == ' ') {
					i++
					closed = true
					break
				}
				sb.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted field %d", len(fields)+1)
			}
			fields = append(fields, sb.String())
			continue
		}
		for i < len(line) && line[i] != ' ' {
			if line[i] == '\\' && i+1 < len(line) {
				i += unescape(&sb, line[i:])
				continue
			}
			sb.WriteByte(line[i])
			i++
		}
		fields = append(fields, sb.String())
	}
	return fields, nil
}

// unescape decodes the escape at the start of s (which begins with a
// backslash) into sb and returns how many bytes it used. Unknown escapes are
// kept literally.
func unescape(sb *strings.Builder, s string) int {
	switch s[1] {
	case '"', '\\':
		sb.WriteByte(s[1])
		return 2
	case 'x':
		if len(s) >= 4 {
			if v, err := strconv.ParseUint(s[2:4], 16, 8); err == nil {
				sb.WriteByte(byte(v))
				return 4
			}
		}
	}
	sb.WriteByte('\\')
	return 1
}
