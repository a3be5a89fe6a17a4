package host_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/hosttest"
)

func sh(script string) map[string]any {
	return map[string]any{"restore": []any{"sh", "-c", script}}
}

// TestExecLatin1DoesNotHurtNeighbours: a step printing Latin-1 on stdout,
// stderr and in REPRISE_OUTPUT succeeds, reads "François", and the steps
// running beside it in the same exec process are not affected (a string
// that is not UTF-8 used to end the shared session, failing them all).
func TestExecLatin1DoesNotHurtNeighbours(t *testing.T) {
	h := newHost(t, host.Options{})
	ctx := ctxT(t, time.Minute)
	var wg sync.WaitGroup
	results := make([]step.Result, 4)
	errs := make([]error, 4)
	var events []step.Event
	var mu sync.Mutex
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script := `sleep 0.5; echo innocent; echo "k=v" > "$REPRISE_OUTPUT"`
			if i == 0 {
				script = `printf 'Fran\347ois\n'; printf 'caf\351 \377\n' >&2; printf 'name=Fran\347ois\n' > "$REPRISE_OUTPUT"; sleep 1`
			}
			results[i], errs[i] = h.Restore(ctx, req("exec", fmt.Sprintf("n%d", i), sh(script)), func(e step.Event) {
				if i == 0 {
					mu.Lock()
					events = append(events, e)
					mu.Unlock()
				}
			})
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i].Status != step.Succeeded {
			t.Errorf("step %d: %+v, %v; want succeeded", i, results[i], errs[i])
		}
	}
	if got := results[0].Outputs["name"]; got != "François" {
		t.Errorf("output name = %q, want François", got)
	}
	var lines []string
	notes := 0
	for _, e := range events {
		if e.Kind != step.EventLog {
			continue
		}
		lines = append(lines, e.Message)
		if strings.Contains(e.Message, "not valid UTF-8") {
			notes++
		}
	}
	all := strings.Join(lines, "\n")
	for _, w := range []string{"François", "café ÿ"} {
		if !strings.Contains(all, w) {
			t.Errorf("log lack %q:\n%s", w, all)
		}
	}
	if notes == 0 || notes > 2 { // once for the output lines, once for REPRISE_OUTPUT
		t.Errorf("the conversion was said %d times:\n%s", notes, all)
	}
}

// TestExecHugeOutputBoundedMemory: a step printing 200 MB (lines, then one
// endless line) leaves the host's and the exec plugin's memory bounded;
// the log gets at most the command's line budget, capped lines, and says
// how many lines it left out. REPRISE_TEST_HUGE=500 runs 500 MB.
func TestExecHugeOutputBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 400 MB through pipes")
	}
	mb := 200
	if v, err := strconv.Atoi(os.Getenv("REPRISE_TEST_HUGE")); err == nil && v > 0 {
		mb = v
	}
	h := newHost(t, host.Options{})
	ctx := ctxT(t, 5*time.Minute)
	pidfile := filepath.Join(t.TempDir(), "plugin.pid")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var logs, longest int
	var last string
	script := fmt.Sprintf(`echo $PPID > %q; head -c %d /dev/zero | tr '\000' a | fold -w 100; head -c %d /dev/zero | tr '\000' b`, pidfile, mb<<20, mb<<20)
	res, err := h.Restore(ctx, req("exec", "flood", sh(script)), func(e step.Event) {
		if e.Kind == step.EventLog {
			logs++
			longest = max(longest, len(e.Message))
			last = e.Message
		}
	})
	if err != nil || res.Status != step.Succeeded {
		t.Fatalf("Restore: %+v, %v", res, err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapSys) - int64(before.HeapSys)
	t.Logf("%d MB printed: %d log lines, longest %d bytes; host heap grew %d MB (HeapSys %d MB); last line %.120q",
		2*mb, logs, longest, grown>>20, after.HeapSys>>20, last)
	if after.Sys > 300<<20 {
		t.Errorf("host memory from the Go runtime %d MB, want under 300 MB", after.Sys>>20)
	}
	if pluginRSS := peakRSS(readPid(t, pidfile)); pluginRSS > 300<<20 {
		t.Errorf("exec plugin peak RSS %d MB, want under 300 MB", pluginRSS>>20)
	} else {
		t.Logf("exec plugin peak RSS %d MB", pluginRSS>>20)
	}
	if logs > 10002 || longest > host.MaxLogLine+100 {
		t.Errorf("%d log lines, longest %d bytes: want the budget (10000) and the cap", logs, longest)
	}
	if !strings.Contains(last, "more output lines") {
		t.Errorf("last log line %q: want the count of lines not logged", last)
	}
}

// peakRSS is the peak resident set size of pid (Linux VmHWM), 0 if unknown.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestExecCancelEndsTheGroup: a cancelled step that ignores SIGTERM, and
// its background child, are killed (SIGKILL after the grace).
func TestExecCancelEndsTheGroup(t *testing.T) {
	h := newHost(t, host.Options{})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.Restore(ctx, req("exec", "stubborn", sh(`trap '' TERM; sleep 600 & echo $! > `+dir+`/bg; echo $$ > `+dir+`/fg; while :; do sleep 1; done`)), nil)
		done <- err
	}()
	bg, fg := readPid(t, dir+"/bg"), readPid(t, dir+"/fg")
	cancel()
	<-done
	waitGone(t, fg, 10*time.Second)
	waitGone(t, bg, 10*time.Second)
}

// TestStepChildrenEndWhenHostDies kills a mini engine with SIGKILL after one
// exec step left a background child (`sleep 600 &`) and while another one
// ignores SIGTERM: nothing any step started survives.
func TestStepChildrenEndWhenHostDies(t *testing.T) {
	dir := t.TempDir()
	mini := exec.Command(os.Args[0], "-test.run=^$")
	mini.Env = append(os.Environ(), envMiniHost+"="+filepath.Join(dir, "pid"), envMiniHostOrphans+"="+dir)
	if err := mini.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mini.Process.Kill(); _ = mini.Wait() }()
	left, stubborn, child := readPid(t, dir+"/left"), readPid(t, dir+"/stubborn"), readPid(t, dir+"/child")
	if err := mini.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = mini.Wait()
	for _, pid := range []int{left, stubborn, child} {
		waitGone(t, pid, 20*time.Second)
	}
}

// FuzzExecOutput runs an exec step printing any bytes on stdout and stderr
// and writing any bytes to REPRISE_OUTPUT, through the real exec plugin:
// the call always gets a result (never a broken session), logs are valid
// UTF-8 and capped, outputs are valid UTF-8.
func FuzzExecOutput(f *testing.F) {
	f.Add([]byte("Fran\xe7ois\n"), []byte("k=Fran\xe7ois\n"))
	f.Add([]byte{0, 0xff, 0xfe, '\r', '\n'}, []byte("=\n#x\nk\n"))
	f.Add([]byte(strings.Repeat("z", 20000)), []byte("a=b\nc=d\n"))
	dir := f.TempDir()
	h := host.New(host.Options{BuiltinCommand: hosttest.BuiltinCommand})
	defer h.Close()
	n := 0
	f.Fuzz(func(t *testing.T, out, outputs []byte) {
		n++
		o, p := filepath.Join(dir, fmt.Sprintf("o%d", n)), filepath.Join(dir, fmt.Sprintf("p%d", n))
		defer os.Remove(o)
		defer os.Remove(p)
		if err := os.WriteFile(o, out, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, outputs, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := h.Restore(ctx, req("exec", "fz", sh(fmt.Sprintf(`cat %q; cat %q >&2; cat %q > "$REPRISE_OUTPUT"`, o, o, p))), func(e step.Event) {
			if !utf8.ValidString(e.Message) || len(e.Message) > host.MaxLogLine+100 {
				t.Errorf("bad log line (%d bytes): %q", len(e.Message), e.Message)
			}
		})
		if err != nil {
			t.Fatalf("Restore: %v (want a result, whatever the bytes)", err)
		}
		for k, v := range res.Outputs {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Errorf("output %q=%q not valid UTF-8", k, v)
			}
		}
	})
}
