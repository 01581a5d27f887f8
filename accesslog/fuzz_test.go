package accesslog

import (
	"bytes"
	"testing"
)

// FuzzParseLine checks that no input panics the parser and that whatever it
// accepts, written back, parses again and writes back to the same line (the
// writer keeps milliseconds and microseconds only, so the first write may
// normalise a foreign value; after that the format must be a fixed point).
func FuzzParseLine(f *testing.F) {
	f.Add(realLine)
	f.Add(`http 2026-03-02T10:15:31.000001Z app/x/1 127.0.0.1:5000 - -1 -1 -1 502 - 120 272 "GET http://a:80/ HTTP/1.1" "-" - - - "-" "-" "-" 0 - "fixed-response" "-" "-" "-" "-" "-" "-"`)
	f.Add(`h2 2016-08-10T22:08:42.945958Z a 1.1.1.1:1 - 0 0 0 200 200 1 1 "\x41 \"b\\" "ua"`)
	f.Add(`"`)
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		out := AppendLine(nil, e)
		e2, err := ParseLine(string(bytes.TrimSuffix(out, []byte("\n"))))
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", out, line, err)
		}
		if out2 := AppendLine(nil, e2); !bytes.Equal(out, out2) {
			t.Fatalf("write/parse is not a fixed point:\n%q\n%q", out, out2)
		}
	})
}
