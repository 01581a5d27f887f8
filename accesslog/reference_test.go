package accesslog

// The reader as it was before the allocation-free rewrite, kept as the
// reference the fuzz test compares the fast parser with.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// refParseLine is ParseLine before the rewrite.
func refParseLine(line string) (*Entry, error) {
	fields, err := refSplitFields(line)
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
	if e.Time, err = refParseTime(get(1)); err != nil {
		return nil, fail(1, err)
	}
	for i, p := range []*float64{&e.RequestProcessingTime, &e.TargetProcessingTime, &e.ResponseProcessingTime} {
		if *p, err = refParseSeconds(get(5 + i)); err != nil {
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
	if e.RequestCreationTime, err = refParseTime(get(21)); err != nil {
		return nil, fail(21, err)
	}
	if len(fields) > knownFields {
		e.Extra = append([]string(nil), fields[knownFields:]...)
	}
	return e, nil
}

func refParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time: %q", s)
	}
	return t.UTC(), nil
}

func refParseSeconds(s string) (float64, error) {
	if s == "" || s == "-1" {
		return -1, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v != v {
		return 0, fmt.Errorf("not a non-negative number of seconds or -1: %q", s)
	}
	return v, nil
}

// refSplitFields splits a line into fields, unquoting and unescaping quoted
// ones. A quote closes a quoted field only when followed by a space or the
// end of the line, so stray quotes inside real user agents survive.
func refSplitFields(line string) ([]string, error) {
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
