package notify_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/notify"
)

// BenchmarkNotifyReceiversDown: the same run (400 nodes, 8 at a time, each
// step 5 ms, 80 of them failing, the state file synced) with no notify
// target, then with three that never deliver: one whose port is closed,
// one that holds every request without answering, one that answers 500.
// Each failure is a message to each; deliveries are retried with backoff
// as in production (first retry after 1 s). It reports the median wall
// time of each run (Start to its return) and their ratio: the issue asks
// that such receivers do not slow the run.
func BenchmarkNotifyReceiversDown(b *testing.B) {
	hold := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hold)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "receiver broken", http.StatusInternalServerError)
	}))
	defer broken.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	targets := fmt.Sprintf(`notify:
  - {name: down, webhook: %q, events: [node-failed, run-finished]}
  - {name: slow, webhook: %q, events: [node-failed, run-finished]}
  - {name: broken, webhook: %q, events: [node-failed, run-finished]}
`, down, slow.URL, broken.URL)
	var without, with []time.Duration
	var cpuWithout, cpuWith []time.Duration
	plain := func() { w, c := notifiedRun(b, ""); without, cpuWithout = append(without, w), append(cpuWithout, c) }
	hooked := func() { w, c := notifiedRun(b, targets); with, cpuWith = append(with, w), append(cpuWith, c) }
	for i := 0; i < b.N; i++ { // alternated, each first in turn
		if i%2 == 0 {
			plain()
			hooked()
		} else {
			hooked()
			plain()
		}
	}
	mw, mv := median(without), median(with)
	b.ReportMetric(mw.Seconds(), "s/run-no-target")
	b.ReportMetric(mv.Seconds(), "s/run-3-bad-targets")
	b.ReportMetric(float64(mv)/float64(mw), "ratio")
	b.ReportMetric(float64(median(cpuWith))/float64(median(cpuWithout)), "cpu-ratio")
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return s[len(s)/2]
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// notifiedRun runs the benchmark's graph with the notify section given
// and returns the run's wall time and the process's CPU time meanwhile.
func notifiedRun(b *testing.B, targets string) (time.Duration, time.Duration) {
	b.StopTimer()
	defer b.StartTimer()
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString("version: 1\nname: notified\ndefaults: {retries: 0}\n" + targets + "nodes:\n")
	for i := 0; i < 400; i++ {
		plugin := "noop"
		if i%5 == 4 {
			plugin = "exec" // fails: a node-failed message
		}
		fmt.Fprintf(&sb, "  - {id: n%d, kind: application, plugin: %s}\n", i, plugin)
	}
	g := enginetest.MustGraph(b, dir, sb.String())
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	w := notify.Watch(st, notify.WatchOptions{Grace: 50 * time.Millisecond})
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		time.Sleep(5 * time.Millisecond)
		if req.Plugin == "exec" {
			return step.Result{Status: step.Failed, Message: "tape unreadable"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{Parallelism: 8, OnEvent: w.OnEvent})
	b.StartTimer()
	t0, c0 := time.Now(), cpuTime()
	res, err := e.Start(context.Background(), g)
	wall, cpu := time.Since(t0), cpuTime()-c0
	b.StopTimer()
	if err != nil || res.Status != state.RunFailed {
		b.Fatalf("run: %v %v", res.Status, err)
	}
	w.Close()
	return wall, cpu
}
