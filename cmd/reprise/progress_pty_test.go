package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/view"
)

// screen is a small terminal emulator: enough of VT100 for what a progress
// display writes (text, CR, LF, cursor up/down/forward/back, erase in line
// and in display, SGR and private modes ignored), so that a test compares
// what a person sees, not the bytes.
type screen struct {
	width int
	rows  [][]rune
	r, c  int
}

func (s *screen) line(r int) []rune {
	for len(s.rows) <= r {
		s.rows = append(s.rows, nil)
	}
	return s.rows[r]
}

func (s *screen) put(ch rune) {
	if s.c >= s.width { // autowrap
		s.r, s.c = s.r+1, 0
	}
	l := s.line(s.r)
	for len(l) <= s.c {
		l = append(l, ' ')
	}
	l[s.c] = ch
	s.rows[s.r] = l
	s.c++
}

func (s *screen) write(b []byte) {
	text := []rune(string(b))
	for i := 0; i < len(text); i++ {
		switch ch := text[i]; {
		case ch == '\r':
			s.c = 0
		case ch == '\n':
			s.r++
			s.line(s.r)
		case ch == 0x1b && i+1 < len(text) && text[i+1] == '[':
			j := i + 2
			for j < len(text) && (text[j] < 0x40 || text[j] > 0x7e) {
				j++
			}
			if j == len(text) {
				return
			}
			params, final := string(text[i+2:j]), text[j]
			i = j
			n := 1
			if v, err := strconv.Atoi(params); err == nil {
				n = v
			}
			switch final {
			case 'A':
				s.r = max(0, s.r-n)
			case 'B':
				s.r += n
			case 'C':
				s.c += n
			case 'D':
				s.c = max(0, s.c-n)
			case 'G':
				s.c = max(0, n-1)
			case 'K':
				l := s.line(s.r)
				if s.c < len(l) {
					s.rows[s.r] = l[:s.c]
				}
			case 'J':
				l := s.line(s.r)
				if s.c < len(l) {
					s.rows[s.r] = l[:s.c]
				}
				s.rows = s.rows[:s.r+1]
			}
		case ch == 0x1b:
			i++ // a two-character escape: skipped
		case ch < 0x20:
		default:
			s.put(ch)
		}
	}
}

// text is what the screen shows, trailing blanks and blank lines cut.
func (s *screen) text() []string {
	var out []string
	for _, l := range s.rows {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// ptyTerm is a pseudo-terminal whose output is read as it comes.
type ptyTerm struct {
	tty  *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func newPtyTerm(t *testing.T, cols int) *ptyTerm {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
	p := &ptyTerm{tty: tty, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			if err != nil { // EIO once the terminal side is closed
				return
			}
		}
	}()
	t.Cleanup(func() { ptmx.Close() })
	return p
}

// screenNow renders what was written so far.
func (p *ptyTerm) screenNow(cols int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &screen{width: cols}
	s.write(p.buf.Bytes())
	return s.text()
}

// waitFor polls the screen until ok, or fails after 5 s.
func (p *ptyTerm) waitFor(t *testing.T, cols int, what string, ok func([]string) bool) []string {
	t.Helper()
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if lines = p.screenNow(cols); ok(lines) {
			return lines
		}
	}
	t.Fatalf("screen never showed %s:\n%s", what, strings.Join(lines, "\n"))
	return nil
}

func countLines(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func indexOf(lines []string, sub string) int {
	for i, l := range lines {
		if strings.Contains(l, sub) {
			return i
		}
	}
	return -1
}

// TestBarOnTerminal drives the live display on a real pseudo-terminal and
// reads the screen as a terminal shows it: a message line appears above
// the bars (the bars are cleared, the line written, the bars drawn again
// below it, never twice); at the end the final bar stays, and the
// "finished" line comes after it; the ETA is written as status writes it.
func TestBarOnTerminal(t *testing.T) {
	const cols = 140
	term := newPtyTerm(t, cols)
	refresh := make(chan any)
	now := p0.Add(5 * time.Second)
	b := newBarProgress(term.tty, refresh, func() time.Time { return now })
	evs := progressEvents()
	for _, ev := range evs[:5] { // pacs and lis running
		b.Event(ev)
	}
	refresh <- now
	lines := term.waitFor(t, cols, "the bars with pacs and lis", func(l []string) bool {
		return indexOf(l, "▶ pacs") >= 0 && indexOf(l, "▶ lis") >= 0
	})
	eta := "ETA " + view.FormatDuration(90*time.Second)
	if countLines(lines, "[ 11/84]") != 1 || countLines(lines, eta) != 1 {
		t.Errorf("want one total bar with %q:\n%s", eta, strings.Join(lines, "\n"))
	}

	for _, ev := range evs[5:9] { // pacs done; lis retried, then failed
		b.Event(ev)
	}
	refresh <- now // mpb draws a removed bar one last time,
	refresh <- now // then no more
	lines = term.waitFor(t, cols, "lis's failure and no running node", func(l []string) bool {
		return indexOf(l, "failed lis (attempt 2, 5.0s): checksum mismatch") >= 0 && indexOf(l, "[ 13/84]") >= 0 &&
			indexOf(l, "▶") < 0
	})
	msg, bar := indexOf(lines, "failed lis (attempt 2"), indexOf(lines, "[ 13/84]")
	if msg > bar || countLines(lines, "/84]") != 1 || countLines(lines, "▶ pacs") != 0 {
		t.Errorf("the message must sit above one redrawn bar, without a stale bar or finished node:\n%s", strings.Join(lines, "\n"))
	}
	if retry := indexOf(lines, "retrying lis (attempt 2): checksum mismatch"); retry < 0 || retry > msg {
		t.Errorf("messages must stay, in order, above the bar:\n%s", strings.Join(lines, "\n"))
	}

	for _, ev := range evs[9:] {
		b.Event(ev)
	}
	b.Event(engine.Event{Time: p0.Add(71 * time.Second), Type: engine.EventRunFinished, RunID: "r1", Total: 84,
		Counts: evs[len(evs)-1].Counts, Message: "failed: 13/84 done, 1 failed"})
	b.Close()
	term.tty.Close()
	<-term.done
	lines = term.screenNow(cols)
	bar = indexOf(lines, "/84]")
	if countLines(lines, "/84]") != 1 || bar != len(lines)-2 {
		t.Fatalf("want one final bar, second to last line:\n%s", strings.Join(lines, "\n"))
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "run r1 finished") {
		t.Errorf("the finished line must come after the final bar, last; got %q:\n%s", last, strings.Join(lines, "\n"))
	}
	if strings.Contains(lines[bar], "ETA") || countLines(lines, "▶") != 0 {
		t.Errorf("the final bar shows no ETA and no running node:\n%s", strings.Join(lines, "\n"))
	}
	for _, want := range []string{"waiting reentry (attempt 1)", "approved reentry: approved by dr.lefevre"} {
		if i := indexOf(lines, want); i < 0 || i > bar {
			t.Errorf("%q should be above the final bar:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}
