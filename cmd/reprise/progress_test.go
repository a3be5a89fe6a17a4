package main

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
)

var p0 = time.Date(2026, 11, 28, 12, 3, 0, 0, time.UTC)

// progressEvents is a small run: two nodes in parallel, one fails after a
// retry and blocks a third, a gate waits and is approved.
func progressEvents() []engine.Event {
	counts := func(s, f, b, w, r, p int) map[state.NodeState]int {
		return map[state.NodeState]int{state.NodeSucceeded: s, state.NodeFailed: f, state.NodeBlocked: b,
			state.NodeWaiting: w, state.NodeRunning: r, state.NodePending: p}
	}
	ev := func(sec float64, typ engine.EventType, node string, st state.NodeState, attempt int, msg string, c map[state.NodeState]int) engine.Event {
		return engine.Event{Time: p0.Add(time.Duration(sec * float64(time.Second))), Type: typ, RunID: "r1",
			NodeID: node, State: st, Attempt: attempt, Message: msg, Counts: c, Total: 84, ETA: 90 * time.Second}
	}
	return []engine.Event{
		ev(0, engine.EventRunStarted, "", "", 0, "", counts(11, 0, 0, 0, 0, 73)),
		ev(1, engine.EventNodeStarted, "pacs", "", 1, "", counts(11, 0, 0, 0, 1, 72)),
		ev(1, engine.EventNodeStarted, "lis", "", 1, "", counts(11, 0, 0, 0, 2, 71)),
		ev(2, engine.EventNodeProgress, "pacs", "", 1, "", counts(11, 0, 0, 0, 2, 71)),
		ev(2.5, engine.EventNodeLog, "lis", "", 1, "restoring backup set\r\n\n  second line\n", nil), // logs carry no counts
		ev(3.1, engine.EventNodeFinished, "pacs", state.NodeSucceeded, 1, "", counts(12, 0, 0, 0, 1, 71)),
		ev(4, engine.EventNodeRetrying, "lis", "", 2, "checksum mismatch", counts(12, 0, 0, 0, 1, 71)),
		ev(4, engine.EventNodeStarted, "lis", "", 2, "", counts(12, 0, 0, 0, 1, 71)),
		ev(9, engine.EventNodeFinished, "lis", state.NodeFailed, 2, "checksum mismatch", counts(12, 1, 0, 0, 0, 71)),
		ev(9, engine.EventNodeFinished, "lab-mw", state.NodeBlocked, 0, "upstream lis failed", counts(12, 1, 1, 0, 0, 70)),
		ev(10, engine.EventNodeFinished, "reentry", state.NodeWaiting, 1, "", counts(12, 1, 1, 1, 0, 69)),
		ev(70, engine.EventNodeApproved, "reentry", state.NodeSucceeded, 1, "approved by dr.lefevre", counts(13, 1, 1, 0, 0, 69)),
		ev(71, engine.EventRunPausing, "", "", 0, "", counts(13, 1, 1, 0, 0, 69)),
		ev(72, engine.EventRunFinished, "", "", 0, "interrupted", counts(13, 1, 1, 0, 0, 69)),
	}
}

func TestPlainProgress(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, false)
	for _, ev := range progressEvents() {
		p.Event(ev)
	}
	p.Close()
	want := `12:03:00 [ 11/84] started run r1, 84 nodes
12:03:01 [ 11/84] started pacs (attempt 1)
12:03:01 [ 11/84] started lis (attempt 1)
12:03:02 [ 11/84] log lis: restoring backup set | second line
12:03:03 [ 12/84] succeeded pacs (attempt 1, 2.1s)
12:03:04 [ 12/84] retrying lis (attempt 2): checksum mismatch
12:03:04 [ 12/84] started lis (attempt 2)
12:03:09 [ 13/84] failed lis (attempt 2, 5.0s): checksum mismatch
12:03:09 [ 14/84] blocked lab-mw: upstream lis failed
12:03:10 [ 14/84] waiting reentry (attempt 1): approve with ` + "`reprise approve r1 reentry`" + `
12:04:10 [ 15/84] approved reentry: approved by dr.lefevre
12:04:11 [ 15/84] pausing: nothing new starts, running steps finish (interrupt again to cancel them)
12:04:12 [ 15/84] run r1 finished (13 succeeded, 1 failed, 1 blocked, 69 pending): interrupted
`
	if got := buf.String(); got != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the display's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

func TestBarProgress(t *testing.T) {
	var out syncBuffer
	refresh := make(chan any)
	now := p0.Add(5 * time.Second)
	b := newBarProgress(&out, refresh, func() time.Time { return now })
	evs := progressEvents()
	render := func() string { // one frame, written in one Write
		before := len(out.String())
		refresh <- now
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if s := out.String(); len(s) > before {
				return s[before:]
			}
		}
		t.Fatal("no frame rendered within 5s")
		return ""
	}
	for _, ev := range evs[:5] { // pacs and lis running
		b.Event(ev)
	}
	frame := ansi.ReplaceAllString(render(), "")
	for _, want := range []string{"[ 11/84]", "✓11 ▶2 ·71", "ETA 1m30s", "▶ pacs", "▶ lis", "4.0s"} {
		if !strings.Contains(frame, want) {
			t.Errorf("first frame lacks %q:\n%s", want, frame)
		}
	}
	for _, ev := range evs[5:] {
		b.Event(ev)
	}
	b.Close()
	all := out.String()
	if !strings.Contains(all, "\x1b[") {
		t.Error("no cursor movement: the display did not redraw in place")
	}
	final := ansi.ReplaceAllString(all, "")
	for _, want := range []string{
		"12:03:09 failed lis (attempt 2, 5.0s): checksum mismatch",
		"12:03:10 waiting reentry (attempt 1): approve with `reprise approve r1 reentry`",
		"12:04:10 approved reentry: approved by dr.lefevre",
		"[ 15/84]", "✓13 ✗1 ⊘1 ·69",
	} {
		if !strings.Contains(final, want) {
			t.Errorf("display lacks %q:\n%s", want, final)
		}
	}
	// The last frame shows no running node any more.
	last := final[strings.LastIndex(final, "[ 15/84]"):]
	if strings.Contains(last, "▶ lis") || strings.Contains(last, "ETA") {
		t.Errorf("a finished node or an ETA is still shown after the run finished:\n%s", last)
	}
}

func TestDoneCount(t *testing.T) {
	tests := []struct {
		name string
		ev   engine.Event
		want int
	}{
		{"no counts", engine.Event{Total: 5}, 0},
		{"mixed", engine.Event{Total: 10, Counts: map[state.NodeState]int{state.NodeSucceeded: 4, state.NodeFailed: 1,
			state.NodeRunning: 2, state.NodePending: 2, state.NodeWaiting: 1}}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := doneCount(tt.ev); got != tt.want {
				t.Errorf("doneCount = %d; want %d", got, tt.want)
			}
		})
	}
}
