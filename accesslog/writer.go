package accesslog

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Writer writes entries as access-log lines. It is safe for concurrent use;
// each entry is written with a single Write call on the underlying writer.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer that writes lines to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write formats e as one line and writes it.
func (w *Writer) Write(e *Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = AppendLine(w.buf[:0], e)
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("writing access log line: %w", err)
	}
	return nil
}

// AppendLine appends e formatted as one access-log line, with its trailing
// newline, to b.
func AppendLine(b []byte, e *Entry) []byte {
	b = appendWord(b, e.Type)
	b = append(b, ' ')
	b = appendTime(b, e.Time)
	b = append(b, ' ')
	b = appendWord(b, e.ELB)
	b = append(b, ' ')
	b = appendWord(b, e.Client)
	b = append(b, ' ')
	b = appendWord(b, e.Target)
	b = append(b, ' ')
	b = appendSeconds(b, e.RequestProcessingTime)
	b = append(b, ' ')
	b = appendSeconds(b, e.TargetProcessingTime)
	b = append(b, ' ')
	b = appendSeconds(b, e.ResponseProcessingTime)
	b = append(b, ' ')
	b = appendStatus(b, e.ELBStatusCode)
	b = append(b, ' ')
	b = appendStatus(b, e.TargetStatusCode)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.ReceivedBytes, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.SentBytes, 10)
	b = append(b, ' ')
	b = appendQuoted(b, e.Request)
	b = append(b, ' ')
	b = appendQuoted(b, e.UserAgent)
	b = append(b, ' ')
	b = appendWord(b, e.SSLCipher)
	b = append(b, ' ')
	b = appendWord(b, e.SSLProtocol)
	b = append(b, ' ')
	b = appendWord(b, e.TargetGroupARN)
	b = append(b, ' ')
	b = appendQuoted(b, e.TraceID)
	b = append(b, ' ')
	b = appendQuoted(b, e.DomainName)
	b = append(b, ' ')
	b = appendQuoted(b, e.ChosenCertARN)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.MatchedRulePriority), 10)
	b = append(b, ' ')
	b = appendTime(b, e.RequestCreationTime)
	b = append(b, ' ')
	b = appendQuoted(b, e.ActionsExecuted)
	b = append(b, ' ')
	b = appendQuoted(b, e.RedirectURL)
	b = append(b, ' ')
	b = appendQuoted(b, e.ErrorReason)
	b = append(b, ' ')
	b = appendQuoted(b, e.TargetPortList)
	b = append(b, ' ')
	b = appendQuoted(b, e.TargetStatusCodeList)
	b = append(b, ' ')
	b = appendQuoted(b, e.Classification)
	b = append(b, ' ')
	b = appendQuoted(b, e.ClassificationReason)
	for _, x := range e.Extra {
		b = append(b, ' ')
		b = appendWord(b, x)
	}
	return append(b, '\n')
}

// appendWord writes an unquoted field; empty is "-". Characters that would
// break the line apart (space, quote, control bytes) are escaped.
func appendWord(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '\\' || c == 0x7f {
			b = appendEscape(b, c)
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendQuoted writes a double-quoted field; empty is "-" in quotes.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	if s == "" {
		b = append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == '"' || c == '\\' || c == 0x7f {
			b = appendEscape(b, c)
			continue
		}
		b = append(b, c)
	}
	return append(b, '"')
}

func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, '-')
	}
	return t.UTC().AppendFormat(b, TimeLayout)
}

func appendSeconds(b []byte, s float64) []byte {
	if s < 0 {
		return append(b, '-', '1')
	}
	return strconv.AppendFloat(b, s, 'f', 3, 64)
}

func appendStatus(b []byte, code int) []byte {
	if code <= 0 {
		return append(b, '-')
	}
	return strconv.AppendInt(b, int64(code), 10)
}
