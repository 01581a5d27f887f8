package accesslog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"reflect"
	"strings"
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

// FuzzParseLineMatchesReference checks the fast parser (substrings of the
// line, hand-rolled time and decimal parsing) against the straightforward
// one it replaced: same entry or both an error, and Reader.Read into a
// reused, dirty Entry gives the same entry again.
func FuzzParseLineMatchesReference(f *testing.F) {
	f.Add(realLine)
	f.Add(`http 2026-02-29T10:15:31.000001Z a b c 0.0010 12 -1 200 200 1 1 "x" "y"`)
	f.Add(`http 2026-03-02T24:00:00.000000Z a b c 1.5 1e3 .5 200 - 1 1 "x\" y" "\\"`)
	f.Add(`h2 2024-02-29T23:59:59.999999Z a\ b "c\x4" \x41 1234567890123456 0 0 200 200 1 1 "\x4" "-"`)
	f.Fuzz(func(t *testing.T, line string) {
		want, werr := refParseLine(line)
		got, gerr := ParseLine(line)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: error %v, reference error %v", line, gerr, werr)
		}
		if gerr != nil {
			if gerr.Error() != werr.Error() {
				t.Fatalf("%q: error %q, reference %q", line, gerr, werr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", line, got, want)
		}
		rd, err := NewReader(strings.NewReader(realLine + "\n" + line + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		e := Entry{Extra: []string{"stale"}}
		if err := rd.Read(&e); err != nil {
			t.Fatal(err)
		}
		if err := rd.Read(&e); err != nil {
			if strings.ContainsAny(line, "\n\r") {
				return // the line is several lines to a reader
			}
			t.Fatalf("Read %q: %v", line, err)
		}
		if len(want.Extra) == 0 {
			want.Extra = e.Extra[:0] // a reused Entry keeps an empty Extra's capacity
		}
		if !strings.ContainsAny(line, "\n\r") && !reflect.DeepEqual(&e, want) {
			t.Fatalf("Read %q into a used Entry:\n got %+v\nwant %+v", line, e, want)
		}
	})
}

// FuzzReader feeds arbitrary bytes (plain or gzip'd) through Reader.Read:
// it never panics, every error is a *ParseError with a line number or a
// read error, and it always comes to an end.
func FuzzReader(f *testing.F) {
	f.Add([]byte(realLine + "\n\nnot a log line\n" + realLine + "\r\n"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(realLine + "\n"))
	zw.Close()
	f.Add(gz.Bytes())
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer rd.Close()
		rd.SetName("fuzz.log")
		var e Entry
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("more than %d results from %d bytes", i, len(data))
			}
			err := rd.Read(&e)
			if err == io.EOF {
				return
			}
			var pe *ParseError
			if errors.As(err, &pe) {
				if pe.Line < 1 || pe.File != "fuzz.log" || !strings.HasPrefix(pe.Error(), "fuzz.log:") {
					t.Fatalf("parse error without its place: %v", pe)
				}
				continue
			}
			if err != nil {
				return // a read (gzip) error ends the input
			}
		}
	})
}
