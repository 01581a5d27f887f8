package accesslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
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
	File  string // input name, "" when the reader was not given one
	Line  int    // 1-based line number in the input
	Field string // field name, "" when the line as a whole is bad
	Err   error
}

func (e *ParseError) Error() string {
	where := fmt.Sprintf("access log line %d", e.Line)
	if e.File != "" {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", where, e.Err)
	}
	return fmt.Sprintf("%s: field %s: %v", where, e.Field, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Reader reads access-log lines, plain or gzip'd (detected from the first
// bytes; concatenated gzip members are read in sequence). It holds one
// line at a time: memory does not grow with the input.
type Reader struct {
	sc     *bufio.Scanner
	line   int
	gz     *gzip.Reader
	name   string
	fields []string
}

// NewReader returns a Reader over r. It reads the first bytes of r to tell
// gzip from plain text.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	rd := &Reader{fields: make([]string, 0, 40)}
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

// SetName names the input in ParseErrors (a file name).
func (r *Reader) SetName(name string) { r.name = name }

// Line returns the number of lines read so far.
func (r *Reader) Line() int { return r.line }

// Next returns the next entry. Blank lines are skipped. At the end of the
// input it returns io.EOF. A malformed line gives a *ParseError; the next
// call continues with the following line.
func (r *Reader) Next() (*Entry, error) {
	e := new(Entry)
	if err := r.Read(e); err != nil {
		return nil, err
	}
	return e, nil
}

// Read is Next into an Entry the caller owns and may reuse: every field of
// e is overwritten. It allocates one string per line (the fields are parts
// of it) unless a field has escapes. On a *ParseError e holds no entry.
func (r *Reader) Read(e *Entry) error {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		if isBlank(b) {
			continue
		}
		var err error
		r.fields, err = parseInto(e, string(b), r.fields[:0])
		if err != nil {
			pe, ok := err.(*ParseError)
			if !ok {
				pe = &ParseError{Err: err}
			}
			pe.File, pe.Line = r.name, r.line
			return pe
		}
		return nil
	}
	if err := r.sc.Err(); err != nil {
		if r.name != "" {
			return fmt.Errorf("reading access log %s after line %d: %w", r.name, r.line, err)
		}
		return fmt.Errorf("reading access log after line %d: %w", r.line, err)
	}
	return io.EOF
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\v' && c != '\f' {
			return false
		}
	}
	return true
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
	e := new(Entry)
	if _, err := parseInto(e, line, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// parseInto parses line into e, using fields as scratch space, and returns
// the scratch space for reuse. The string fields of e are substrings of
// line where no unescaping was needed.
func parseInto(e *Entry, line string, fields []string) ([]string, error) {
	fields, err := splitFields(line, fields)
	if err != nil {
		return fields, &ParseError{Err: err}
	}
	if len(fields) < MinFields {
		return fields, &ParseError{Err: fmt.Errorf("%d fields, want at least %d", len(fields), MinFields)}
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
	extra := e.Extra[:0]
	*e = Entry{
		Type: get(0), ELB: get(2), Client: get(3), Target: get(4),
		Request: get(12), UserAgent: get(13), SSLCipher: get(14), SSLProtocol: get(15),
		TargetGroupARN: get(16), TraceID: get(17), DomainName: get(18), ChosenCertARN: get(19),
		ActionsExecuted: get(22), RedirectURL: get(23), ErrorReason: get(24),
		TargetPortList: get(25), TargetStatusCodeList: get(26),
		Classification: get(27), ClassificationReason: get(28),
	}
	fail := func(i int, err error) ([]string, error) { return fields, &ParseError{Field: fieldNames[i], Err: err} }
	if e.Time, err = parseTime(get(1)); err != nil {
		return fail(1, err)
	}
	for i, p := range []*float64{&e.RequestProcessingTime, &e.TargetProcessingTime, &e.ResponseProcessingTime} {
		if *p, err = parseSeconds(get(5 + i)); err != nil {
			return fail(5+i, err)
		}
	}
	if e.ELBStatusCode, err = parseStatus(get(8)); err != nil {
		return fail(8, err)
	}
	if e.TargetStatusCode, err = parseStatus(get(9)); err != nil {
		return fail(9, err)
	}
	if e.ReceivedBytes, err = parseCount(get(10)); err != nil {
		return fail(10, err)
	}
	if e.SentBytes, err = parseCount(get(11)); err != nil {
		return fail(11, err)
	}
	if s := get(20); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fail(20, fmt.Errorf("not an integer: %q", s))
		}
		e.MatchedRulePriority = n
	}
	if e.RequestCreationTime, err = parseTime(get(21)); err != nil {
		return fail(21, err)
	}
	if len(fields) > knownFields {
		e.Extra = append(extra, fields[knownFields:]...)
	}
	return fields, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, ok := parseTimeFast(s); ok {
		return t, nil
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
	if v, ok := parseDecimalFast(s); ok {
		return v, nil
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

// splitFields splits a line into fields, appending them to fields. Quoted
// fields lose their quotes; escapes are decoded. A quote closes a quoted
// field only when followed by a space or the end of the line, so stray
// quotes inside real user agents survive. Fields without escapes are
// substrings of line.
func splitFields(line string, fields []string) ([]string, error) {
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		if line[i] == '"' {
			i++
			if j, ok := plainQuoted(line, i); ok {
				fields = append(fields, line[i:j])
				i = j + 1
				continue
			}
			start, esc, closed := i, false, false
			for i < len(line) {
				c := line[i]
				if c == '\\' && i+1 < len(line) {
					esc = true
					if n := line[i+1]; n == '"' || n == '\\' {
						i += 2
					} else {
						i++
					}
					continue
				}
				if c == '"' && (i+1 == len(line) || line[i+1] == ' ') {
					closed = true
					break
				}
				i++
			}
			if !closed {
				return fields, fmt.Errorf("unterminated quoted field %d", len(fields)+1)
			}
			fields = append(fields, field(line[start:i], esc))
			i++ // the closing quote
			continue
		}
		start, esc := i, false
		if j := strings.IndexByte(line[i:], ' '); j >= 0 && strings.IndexByte(line[i:i+j], '\\') < 0 {
			fields = append(fields, line[i:i+j])
			i += j
			continue
		}
		for i < len(line) && line[i] != ' ' {
			if line[i] == '\\' && i+1 < len(line) {
				esc = true
				if n := line[i+1]; n == '"' || n == '\\' {
					i += 2
					continue
				}
			}
			i++
		}
		fields = append(fields, field(line[start:i], esc))
	}
	return fields, nil
}

// plainQuoted finds the closing quote of the quoted field that starts at
// line[start] when the field has no backslash (the common case), using the
// fast byte search; ok is false when there is a backslash before it or no
// closing quote at all, and the caller scans byte by byte.
func plainQuoted(line string, start int) (end int, ok bool) {
	for i := start; ; {
		j := strings.IndexByte(line[i:], '"')
		if j < 0 {
			return 0, false
		}
		i += j
		if i+1 == len(line) || line[i+1] == ' ' {
			return i, strings.IndexByte(line[start:i], '\\') < 0
		}
		i++
	}
}

// field returns raw, with its escapes decoded when it has any.
func field(raw string, esc bool) string {
	if !esc {
		return raw
	}
	var sb strings.Builder
	sb.Grow(len(raw))
	for i := 0; i < len(raw); {
		if raw[i] == '\\' && i+1 < len(raw) {
			i += unescape(&sb, raw[i:])
			continue
		}
		sb.WriteByte(raw[i])
		i++
	}
	return sb.String()
}

// parseTimeFast parses the log's own layout (TimeLayout) without the
// general parser; ok is false for anything else, valid or not.
func parseTimeFast(s string) (time.Time, bool) {
	if len(s) != len(TimeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[26] != 'Z' {
		return time.Time{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for _, c := range []byte(s[a:b]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	us, ok7 := num(20, 26)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || mo < 1 || mo > 12 || d < 1 || d > 28 && d > daysIn(mo, y) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, us*1000, time.UTC), true
}

func daysIn(month, year int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parseDecimalFast parses "123.456"-style seconds exactly as
// strconv.ParseFloat would (the digits and the power of ten are exact
// float64s, so one division rounds correctly); ok is false otherwise.
func parseDecimalFast(s string) (float64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return 0, false
		}
	}
	if digits > 15 { // beyond 2^53 the mantissa would not be exact
		return 0, false
	}
	p := 1.0
	for range frac {
		p *= 10
	}
	return float64(m) / p, true
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
