package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The JSON log is written in batches: an info line waits (up to
// logFlushEvery), a warning goes out at once with the lines before it,
// and closing the log writes everything.
func TestLogBatches(t *testing.T) {
	state := filepath.Join(t.TempDir(), "reprise.db")
	log, closeLog, err := openLog(state)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(logPath(state))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t0 := time.Now()
	log.Info("first line")
	if got := read(); got != "" && time.Since(t0) < logFlushEvery {
		t.Errorf("an info line was written at once (%q): want it batched", got)
	}
	log.Warn("a warning")
	if got := read(); !strings.Contains(got, "first line") || !strings.Contains(got, "a warning") {
		t.Fatalf("after a warning the log holds %q, want both lines", got)
	}
	log.Info("later line")
	deadline := time.Now().Add(logFlushEvery + 10*time.Second)
	for !strings.Contains(read(), "later line") {
		if time.Now().After(deadline) {
			t.Fatalf("an info line still not written %s after it was logged", logFlushEvery+10*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Info("last line")
	closeLog()
	if got := read(); !strings.Contains(got, "last line") {
		t.Fatalf("closing the log lost a line: %q", got)
	}
}
