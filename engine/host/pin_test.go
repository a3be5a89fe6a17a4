package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/graphs"
)

// TestPinnedBinarySwapRace swaps a pinned plugin's file for another one
// over and over while plugins start: every start must run the pinned bytes
// (the host hashes a private copy and runs that copy), never the other
// file, which would leave a mark.
func TestPinnedBinarySwapRace(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "evil-ran")
	good := fmt.Sprintf("#!/bin/sh\n%s=crashy exec %q -test.run='^$'\n", envTestPlugin, os.Args[0])
	evil := fmt.Sprintf("#!/bin/sh\necho ran >> %q\n%s=crashy exec %q -test.run='^$'\n", mark, envTestPlugin, os.Args[0])
	path := filepath.Join(dir, "vendor")
	writeScript(t, path, good)
	sum, err := host.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	writeScript(t, filepath.Join(dir, "good"), good)
	writeScript(t, filepath.Join(dir, "evil"), evil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // rename(2) is atomic: the path is always one file or the other
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			src := filepath.Join(dir, "good")
			if i%2 == 1 {
				src = filepath.Join(dir, "evil")
			}
			b, _ := os.ReadFile(src)
			tmp := filepath.Join(dir, fmt.Sprintf("tmp%d", i%2))
			_ = os.WriteFile(tmp, b, 0o755)
			_ = os.Rename(tmp, path)
		}
	}()
	starts, refused := 0, 0
	for i := 0; i < 30; i++ {
		h := newHost(t, host.Options{Plugins: map[string]graphs.PluginRef{"vendor": {Path: path, SHA256: sum}}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := h.Describe(ctx, "vendor")
		cancel()
		switch {
		case err == nil:
			starts++
		case errors.Is(err, host.ErrChecksum):
			refused++
		default:
			t.Errorf("start %d: %v", i, err)
		}
		h.Close()
	}
	close(stop)
	wg.Wait()
	if b, err := os.ReadFile(mark); err == nil {
		t.Fatalf("the unpinned file ran %d times in %d starts (%d refused)", strings.Count(string(b), "ran"), starts, refused)
	}
	if starts == 0 || refused == 0 {
		t.Logf("starts %d, refused %d: the swap did not interleave both ways", starts, refused)
	}
}

// TestCheckPins checks every declared plugin ahead of a run: a pinned one
// that changed, and a missing one, are both reported with what to fix.
func TestCheckPins(t *testing.T) {
	opts := hostOpts(t)
	path := filepath.Join(opts.GraphDir, "crashy")
	opts.Plugins["crashy"] = graphs.PluginRef{Path: "crashy", SHA256: strings.Repeat("ab", 32)}
	opts.Plugins["gone"] = graphs.PluginRef{Path: "bin/gone"}
	h := newHost(t, opts)
	err := h.CheckPins(ctxT(t, 10*time.Second), []string{"crashy", "gone", "exec", "silent"})
	actual, _ := host.FileSHA256(path)
	for _, want := range []error{host.ErrChecksum, host.ErrNotFound} {
		if !errors.Is(err, want) {
			t.Errorf("err = %v, want %v", err, want)
		}
	}
	for _, w := range []string{`plugin "crashy"`, path, "expected sha256 " + strings.Repeat("ab", 32), "actual " + actual, `plugin "gone"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, lacks %q", err, w)
		}
	}
	var pe *host.PluginError
	if !errors.As(err, &pe) || !pe.Permanent() {
		t.Errorf("err = %v: want a permanent PluginError", err)
	}
}
