package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func renderSample(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sampleRuns(t), HTMLOptions{Title: "before vs after"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// find returns every element under n that matches ok.
func find(n *html.Node, ok func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && ok(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func textOf(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
			sb.WriteByte('\n')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return sb.String()
}

// The page parses and holds every chart as inline SVG with its legend
// entries and both axis labels with units drawn in it, every table, and
// nothing that would be fetched: no script, no stylesheet link, no src or
// href to another document.
func TestHTMLStructure(t *testing.T) {
	doc, err := html.Parse(bytes.NewReader(renderSample(t)))
	if err != nil {
		t.Fatal(err)
	}
	figs := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-chart"); return n.Data == "figure" && ok })
	want := map[string][]string{ // chart -> axis labels (with units) it must show
		"requests":               {"time since run start (s)", "requests/s"},
		"failures-1":             {"time since run start (s)", "failed requests/s"},
		"failures-2":             {"time since run start (s)", "failed requests/s"},
		"series-healthy-targets": {"time since run start (s)", "targets"},
		"series-pods-ready":      {"time since run start (s)", "pods"},
		"series-nodes":           {"time since run start (s)", "nodes"},
		"latency":                {"time since run start (s)", "latency (ms, log scale)"},
		"windows":                {"time since run start (s)"},
	}
	got := map[string]bool{}
	for _, f := range figs {
		id, _ := attr(f, "data-chart")
		got[id] = true
		svgs := find(f, func(n *html.Node) bool { return n.Data == "svg" })
		if len(svgs) != 1 {
			t.Errorf("chart %s: %d svg elements, want 1", id, len(svgs))
			continue
		}
		if vb, ok := attr(svgs[0], "viewBox"); !ok || vb == "" {
			t.Errorf("chart %s: svg without viewBox (will not scale)", id)
		}
		texts := map[string]bool{}
		for _, tx := range find(svgs[0], func(n *html.Node) bool { return n.Data == "text" }) {
			texts[strings.TrimSpace(textOf(tx))] = true
		}
		for _, label := range want[id] {
			if !texts[label] {
				t.Errorf("chart %s: axis label %q not drawn", id, label)
			}
		}
		legend, _ := attr(f, "data-legend")
		if legend == "" {
			t.Errorf("chart %s: no legend", id)
		}
		for _, entry := range strings.Split(legend, "|") {
			if !texts[entry] {
				t.Errorf("chart %s: legend entry %q not drawn in the SVG", id, entry)
			}
		}
		if caps := find(f, func(n *html.Node) bool { return n.Data == "figcaption" }); len(caps) != 1 || textOf(caps[0]) == "" {
			t.Errorf("chart %s: no caption", id)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("chart %s missing", id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("charts %v, want exactly %v", got, want)
	}
	// The legend of each run's failure chart names the failure classes and
	// the windows it shades.
	for _, f := range figs {
		if id, _ := attr(f, "data-chart"); id == "failures-1" {
			l, _ := attr(f, "data-legend")
			for _, e := range []string{"ALB-made 502", "ALB-made 504", "no response: reset", "disruption window", "predicted failure window (upper half)", "measured failure window (lower half)"} {
				if !strings.Contains("|"+l+"|", "|"+e+"|") {
					t.Errorf("failures-1 legend %q lacks %q", l, e)
				}
			}
		}
	}
	tables := map[string]int{}
	for _, tb := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-table"); return n.Data == "table" && ok }) {
		id, _ := attr(tb, "data-table")
		tables[id]++
	}
	for id, n := range map[string]int{"comparison": 1, "failures": 1, "predicted": 1, "events": 1, "config": 2} {
		if tables[id] != n {
			t.Errorf("table %s: %d, want %d", id, tables[id], n)
		}
	}
	events := find(doc, func(n *html.Node) bool { v, _ := attr(n, "data-table"); return v == "events" })
	if rows := find(events[0], func(n *html.Node) bool { return n.Data == "tr" }); len(rows) != 13 {
		t.Errorf("event table has %d rows, want 12 and a header", len(rows))
	}
	for _, n := range find(doc, func(n *html.Node) bool { return true }) {
		switch n.Data {
		case "script", "link", "iframe", "img", "object", "embed":
			t.Errorf("self-contained page has a <%s>", n.Data)
		}
		for _, a := range n.Attr {
			if (a.Key == "src" || a.Key == "href" || a.Key == "xlink:href") && !strings.HasPrefix(a.Val, "#") && !strings.HasPrefix(a.Val, "data:") {
				t.Errorf("<%s %s=%q> points outside the page", n.Data, a.Key, a.Val)
			}
		}
	}
	if style := find(doc, func(n *html.Node) bool { return n.Data == "style" }); len(style) != 1 || strings.Contains(textOf(style[0]), "url(") || strings.Contains(textOf(style[0]), "@import") {
		t.Error("the stylesheet must be inline and load nothing")
	}
}

// Text from results (run names, event messages) is escaped, not markup.
func TestHTMLEscapes(t *testing.T) {
	runs := sampleRuns(t)
	runs[0].Name = `<script>alert(1)</script>`
	runs[0].Result.Events[0].Message = `<img src=x onerror=alert(1)>`
	var buf bytes.Buffer
	if err := WriteHTML(&buf, runs, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "<script>") || strings.Contains(s, "<img") {
		t.Fatal("result text reached the page as markup")
	}
}

// chromium finds Debian's chromium. When CI is set it must be there
// (scripts/test.sh installs it); elsewhere the test skips without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found, and CI is set: scripts/test.sh installs Debian's chromium (apt-get install -y chromium)")
	}
	t.Skip("chromium not installed (apt-get install -y chromium); the HTML report is not rendered")
	return ""
}

// The report paints in headless Chromium: the screenshot is not blank,
// shows the colours of the charts, and Chromium logs no console message
// (nothing failed to load, no error).
func TestHTMLRendersInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, renderSample(t), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--hide-scrollbars",
		"--enable-logging=stderr", "--v=0",
		"--screenshot="+shot, "--window-size=1280,2400", "file://"+page)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") || strings.Contains(l, "Failed to load resource") {
			t.Errorf("console message while rendering: %s", l)
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, stderr.String())
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() != 1280 || b.Dy() != 2400 {
		t.Errorf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	var dark, blue, vermillion, total int
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			total++
			r, g, bl := rgb8(img, x, y)
			if r < 128 && g < 128 && bl < 128 {
				dark++
			}
			if near(r, 0x00) && near(g, 0x72) && near(bl, 0xB2) {
				blue++
			}
			if near(r, 0xD5) && near(g, 0x5E) && near(bl, 0x00) {
				vermillion++
			}
		}
	}
	t.Logf("screenshot: %.2f%% dark pixels, %d blue, %d vermillion samples", 100*float64(dark)/float64(total), blue, vermillion)
	if dark < total/200 {
		t.Errorf("screenshot looks blank: %d of %d samples dark", dark, total)
	}
	if blue == 0 || vermillion == 0 {
		t.Errorf("chart colours not painted: %d blue, %d vermillion samples", blue, vermillion)
	}
}

func rgb8(img image.Image, x, y int) (int, int, int) {
	r, g, b, _ := img.At(x, y).RGBA()
	return int(r >> 8), int(g >> 8), int(b >> 8)
}

func near(v, want int) bool { return v >= want-24 && v <= want+24 }
