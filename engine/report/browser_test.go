package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromiumPath finds Debian's chromium. The test skips without it only
// outside CI: with CI=true a missing browser fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed but CI=true: .ci/run must install Debian's chromium")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipped outside CI")
	return ""
}

// chromium runs headless Chromium with no network at all (a proxy that
// does not exist, background networking off) and returns its stdout.
func chromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestBrowserRendersReport loads the HTML report of a real run (engine,
// plugin processes, state file) in headless
// Chromium and checks what the browser built: the summary, the timeline's
// bars and the graph's nodes are in the DOM, and a screenshot is a real
// PNG. REPRISE_SCREENSHOT=FILE.png keeps the screenshot, and the page as
// FILE.html.
func TestBrowserRendersReport(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := chromiumPath(t)
	r := mustEngineRun(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := r.HTML(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + page

	dom := string(chromium(t, bin, "--dump-dom", url))
	checks := []struct {
		name string
		re   string
		min  int
	}{
		{"summary headline", `id="headline"[^>]*>83 % of vital services back \(5 of 6\)`, 1},
		{"summary cards", `<div class="card st-`, 7},
		{"by-kind table", `id="by-kind"`, 1},
		{"timeline svg", `<svg id="timeline-svg"`, 1},
		{"timeline bars", `<rect class="bar r-`, 10},
		{"timeline ticks", `<line class="tick"`, 4},
		{"graph svg", `<svg id="graph-svg"`, 1},
		{"graph nodes", `<g class="node st-`, 10},
		{"failed node", `data-node="lis" data-state="failed"`, 1},
		{"graph edges", `<path class="edge`, 11 + 1}, // 11 dependencies and the legend's sample
		{"failures", `<tr class="failure" data-node="lis"`, 1},
		{"approval", `<tr class="decision" data-type="approval"`, 1},
		{"journal", `class="verify ok"`, 1},
	}
	for _, c := range checks {
		if n := len(regexp.MustCompile(c.re).FindAllStringIndex(dom, -1)); n < c.min {
			t.Errorf("%s: %d matches of %q in the rendered DOM; want at least %d", c.name, n, c.re, c.min)
		}
	}
	if t.Failed() {
		t.Logf("DOM starts with:\n%.2000s", dom)
	}

	shot := filepath.Join(dir, "report.png")
	chromium(t, bin, "--screenshot="+shot, "--window-size=1400,2000", url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 2000 {
		t.Errorf("screenshot is %dx%d; want 1400x2000", b.Dx(), b.Dy())
	}
	if distinctColours(img, 200) < 8 {
		t.Error("screenshot is nearly blank")
	}
	if keep := os.Getenv("REPRISE_SCREENSHOT"); keep != "" {
		data, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(keep, data, 0o644)
		}
		if err == nil {
			err = os.WriteFile(strings.TrimSuffix(keep, ".png")+".html", buf.Bytes(), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// distinctColours counts the colours seen on a grid of step pixels.
func distinctColours(img image.Image, step int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += step / 4 {
		for x := b.Min.X; x < b.Max.X; x += step / 4 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}
