package web_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// chromiumPath is the chromium a browser test drives; the test is skipped
// with -short, or when chromium is not installed (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: not with -short")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("browser test: no chromium on PATH (apt-get install chromium; .ci/run installs it)")
	}
	return chromium
}

// browserAlloc starts chromium headless in a window of width×height, with
// a profile of its own, until the test ends; browsers of the test are
// made from the context it returns (chromedp.NewContext).
func browserAlloc(t *testing.T, ctx context.Context, chromium string, width, height int) context.Context {
	t.Helper()
	alloc, cancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(width, height),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()))...)
	t.Cleanup(cancel)
	return alloc
}

// screenshotDir is where a browser test writes its screenshots:
// $REPRISE_SCREENSHOT_DIR to keep them, else the test's temporary folder.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("REPRISE_SCREENSHOT_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}
