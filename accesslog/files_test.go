package accesslog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// The corpus covers the documented format with each later group of
// fields: lines ending after "request", after user_agent, after
// target_group_arn, after redirect_url, the full 29 fields, and lines with
// fields appended after classification_reason; ELB-made 502/503/504/460,
// a redirect, a WebSocket upgrade and an unparsable request.
func TestCorpus(t *testing.T) {
	data, err := os.ReadFile("testdata/corpus.log")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var got []Entry
	for {
		var e Entry
		err := rd.Read(&e)
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("corpus line %d: %v", rd.Line(), err)
		}
		got = append(got, e)
	}
	if len(got) != 13 {
		t.Fatalf("read %d entries, want 13", len(got))
	}
	checks := []struct {
		i    int
		ok   bool
		what string
	}{
		{0, got[0].UserAgent == "curl/8.5.0" && got[0].TargetGroupARN == "" && got[0].ELBStatusCode == 200, "13+1 fields"},
		{1, TargetGroupName(got[1].TargetGroupARN) == "orders" && got[1].TraceID == "", "ends at target_group_arn"},
		{2, got[2].ActionsExecuted == "forward" && got[2].ErrorReason == "" && !got[2].RequestCreationTime.IsZero(), "ends at redirect_url"},
		{3, got[3].Type == "https" && got[3].TargetStatusCodeList == "201" && got[3].Extra == nil, "all 29 fields"},
		{4, got[4].Type == "h2" && reflect.DeepEqual(got[4].Extra, []string{"TID_0011223344556677"}), "one appended field"},
		{5, got[5].ELBGenerated() && got[5].ELBStatusCode == 502 && got[5].Target == "10.1.2.30:8000" && got[5].TargetProcessingTime == -1, "ELB 502 with a target"},
		{6, got[6].ELBStatusCode == 503 && got[6].Target == "" && got[6].RequestProcessingTime == -1, "ELB 503, no target"},
		{7, got[7].ELBStatusCode == 504 && got[7].Target != "", "ELB 504"},
		{8, got[8].TargetStatusCode == 500 && !got[8].ELBGenerated() && len(got[8].Extra) == 5 && got[8].Extra[4] == "appended-b", "target 500, five appended fields"},
		{9, got[9].ELBStatusCode == 460 && got[9].Classification == "Ambiguous", "client closed, desync classification"},
		{10, got[10].Type == "ws" && got[10].ELBStatusCode == 101 && got[10].MatchedRulePriority == 2, "websocket"},
		{11, got[11].RedirectURL == "https://orders.example.net:443/new" && got[11].ActionsExecuted == "redirect", "redirect"},
		{12, got[12].Request == "- - - " && got[12].ELBStatusCode == 400, "unparsable request"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("corpus line %d (%s): %+v", c.i+1, c.what, got[c.i])
		}
	}
}

func gzipFile(t *testing.T, path, content string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(content))
	zw.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A directory in the S3 layout is walked in path (so time) order, other
// files are skipped, gzip'd and plain files and stdin mix, and malformed
// lines are reported with file and line while the read goes on.
func TestReadFilesS3Layout(t *testing.T) {
	root := t.TempDir()
	day := filepath.Join(root, "AWSLogs", "210987654321", "elasticloadbalancing", "us-east-2", "2026", "03", "02")
	name := func(hhmm, node string) string {
		return filepath.Join(day, "210987654321_elasticloadbalancing_us-east-2_app.orders-alb.8f3a21c0d9e4b7a1_20260302T"+hhmm+"Z_"+node+"_x1.log.gz")
	}
	gzipFile(t, name("1020", "10.0.0.2"), realLine+"\n"+realLine+"\n")
	gzipFile(t, name("1015", "10.0.0.1"), realLine+"\ngarbage line\n"+realLine+"\n")
	os.WriteFile(filepath.Join(day, "README.txt"), []byte("not a log"), 0o644)
	plain := filepath.Join(t.TempDir(), "extra.log")
	os.WriteFile(plain, []byte(realLine+"\n"), 0o644)

	files, err := Files([]string{root, plain, Stdin})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{name("1015", "10.0.0.1"), name("1020", "10.0.0.2"), plain, Stdin}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("Files = %v\nwant %v", files, want)
	}
	var bad []string
	var seen []int
	st, err := ReadFiles(context.Background(), files, ReadOptions{
		Stdin:  strings.NewReader("\n" + realLine + "\nstdin junk\n"),
		OnBad:  func(pe *ParseError) { bad = append(bad, pe.Error()) },
		OnFile: func(i, n int, _ string) { seen = append(seen, i) },
	}, func(e *Entry) error {
		if e.ELBStatusCode != 200 {
			t.Errorf("entry %+v", e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || st.Entries != 6 || st.Bad != 2 || !reflect.DeepEqual(seen, []int{0, 1, 2, 3}) {
		t.Fatalf("stats %+v, files seen %v", st, seen)
	}
	if len(bad) != 2 || !strings.HasPrefix(bad[0], name("1015", "10.0.0.1")+":2: ") || !strings.HasPrefix(bad[1], "stdin:3: ") {
		t.Fatalf("bad lines reported as %q", bad)
	}

	// An error from the callback stops the read with that error.
	stop := errors.New("enough")
	if _, err := ReadFiles(context.Background(), files, ReadOptions{Stdin: strings.NewReader("")}, func(*Entry) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error came back as %v", err)
	}
	if _, err := Files([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no .log") {
		t.Fatalf("empty directory: %v", err)
	}
	if _, err := Files([]string{filepath.Join(root, "missing")}); err == nil {
		t.Fatal("a missing path gave no error")
	}
}
