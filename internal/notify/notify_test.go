package notify_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/notify"
)

// receiver records what a webhook got.
type receiver struct {
	mu   sync.Mutex
	got  []notify.Message
	sigs []string
	body [][]byte
}

func (r *receiver) handler(status int, hold <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if hold != nil {
			select {
			case <-hold:
			case <-req.Context().Done():
				return
			}
		}
		b, _ := io.ReadAll(req.Body)
		var m notify.Message
		_ = json.Unmarshal(b, &m)
		r.mu.Lock()
		r.got = append(r.got, m)
		r.sigs = append(r.sigs, req.Header.Get(notify.SignatureHeader))
		r.body = append(r.body, b)
		r.mu.Unlock()
		w.WriteHeader(status)
	}
}

func (r *receiver) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.got {
		out = append(out, string(m.Event)+":"+m.Node)
	}
	return out
}

func failingHost() *enginetest.FakeHost {
	return &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		switch req.Plugin {
		case "manual":
			return step.Result{Status: step.Waiting, Message: "sign the paper"}, nil
		case "exec":
			return step.Result{Status: step.Failed, Message: "tape unreadable"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
}

// TestNotifyNeverHoldsTheRun: a run with five targets — a good webhook
// checked with HMAC, one that does not answer until released, one that
// answers 500, one whose port is closed, and a command — ends while the
// silent one still holds its request; the good one gets the gate, the
// failure and the run's end, each signed; every delivery and failure is
// journaled, the failing ones retried then given up.
func TestNotifyNeverHoldsTheRun(t *testing.T) {
	dir := t.TempDir()
	good, silent, broken := &receiver{}, &receiver{}, &receiver{}
	hold := make(chan struct{})
	srvGood := httptest.NewServer(good.handler(200, nil))
	defer srvGood.Close()
	srvSilent := httptest.NewServer(silent.handler(200, hold))
	defer srvSilent.Close()
	srvBroken := httptest.NewServer(broken.handler(500, nil))
	defer srvBroken.Close()
	defer close(hold) // before the servers close: they wait for their handlers
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	out := filepath.Join(dir, "sms.txt")
	t.Setenv("TEST_HOOK_KEY", "k3y-of-the-cell")
	g := enginetest.MustGraph(t, dir, fmt.Sprintf(`version: 1
name: notified
notify:
  - {name: cell, webhook: %q, secret: "${secret:TEST_HOOK_KEY}", events: [gate-waiting, node-failed, run-finished]}
  - {name: silent, webhook: %q, events: [gate-waiting, node-failed, run-finished]}
  - {name: broken, webhook: %q, events: [node-failed]}
  - {name: down, webhook: %q, events: [node-failed]}
  - {name: sms, command: [sh, -c, 'cat >> %s; echo >> %s'], events: [node-failed]}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop}
  - {id: tape, kind: data, plugin: exec, depends_on: [ad], owner: "Backup team", contact: "+33 6 00", with: {restore: [false]}}
  - {id: gate, kind: data, plugin: manual, depends_on: [ad]}
`, srvGood.URL+"/hook", srvSilent.URL, srvBroken.URL, down, out, out))
	st := enginetest.MustStore(t, dir)
	var recMu sync.Mutex
	var outcomes []notify.Outcome
	w := notify.Watch(st, notify.WatchOptions{Options: notify.Options{RetryFor: 300 * time.Millisecond,
		FirstDelay: 20 * time.Millisecond, Timeout: 5 * time.Second, Record: func(o notify.Outcome) {
			recMu.Lock()
			outcomes = append(outcomes, o)
			recMu.Unlock()
		}}, Grace: 200 * time.Millisecond})
	e := engine.New(st, failingHost(), engine.Options{OnEvent: w.OnEvent, Parallelism: 4})
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunFailed {
		t.Fatalf("status %s", res.Status)
	}
	// The run is over while the silent receiver holds every request.
	waitFor(t, func() bool { return len(good.events()) == 3 })
	if n := len(silent.events()); n != 0 {
		t.Fatalf("silent receiver answered %d", n)
	}
	waitFor(t, func() bool {
		recMu.Lock()
		defer recMu.Unlock()
		finals := 0
		for _, o := range outcomes {
			if o.Final && (o.Target == "broken" || o.Target == "down") {
				finals++
			}
		}
		return finals == 2
	})
	w.Close() // gives the silent one up after the grace
	got := strings.Join(good.events(), ",")
	for _, want := range []string{"gate-waiting:gate", "node-failed:tape", "run-finished:"} {
		if !strings.Contains(got, want) {
			t.Errorf("good receiver got %s, want %s", got, want)
		}
	}
	good.mu.Lock()
	for i, b := range good.body {
		if want := notify.Sign([]byte("k3y-of-the-cell"), b); !hmac.Equal([]byte(good.sigs[i]), []byte(want)) {
			t.Errorf("signature %q, want %q", good.sigs[i], want)
		}
		if good.got[i].Node == "tape" && (good.got[i].Owner != "Backup team" || good.got[i].Contact != "+33 6 00") {
			t.Errorf("failure message lacks the owner: %+v", good.got[i])
		}
		if strings.Contains(string(b), "k3y-of-the-cell") {
			t.Error("the key travels in the body")
		}
	}
	good.mu.Unlock()
	sms, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(sms), `"event":"node-failed"`) {
		t.Errorf("command got %q, %v", sms, err)
	}
	// The journal: delivered, retried, given up — and never the key.
	var lines []string
	st.Journal(res.RunID, 0, func(e state.Entry) error {
		if e.Type == state.EntryNotified || e.Type == state.EntryNotifyFailed {
			lines = append(lines, fmt.Sprintf("%s %s %s %s %s", e.Type, e.Data["target"], e.Data["event"], e.Data["final"], e.Message))
		}
		return nil
	})
	j := strings.Join(lines, "\n")
	for _, want := range []string{"notified cell gate-waiting true HTTP 200", "notified sms node-failed true exit 0",
		"notify-failed broken node-failed  HTTP 500; retrying in 20ms", "notify-failed broken node-failed true HTTP 500; given up after",
		"notify-failed down node-failed true POST:", "notify-failed silent run-finished true given up: reprise stopped"} {
		if !strings.Contains(j, want) {
			t.Errorf("journal lacks %q:\n%s", want, j)
		}
	}
	if strings.Contains(j, "k3y-of-the-cell") {
		t.Error("the key is in the journal")
	}
	if rep, err := st.Verify(res.RunID); err != nil || !rep.OK {
		t.Errorf("journal chain: %+v, %v", rep, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSendNeverBlocks: with the queue full, Send drops and journals.
func TestSendNeverBlocks(t *testing.T) {
	hold := make(chan struct{})
	r := &receiver{}
	srv := httptest.NewServer(r.handler(200, hold))
	defer srv.Close()
	defer close(hold)
	g := enginetest.MustGraph(t, t.TempDir(), fmt.Sprintf("version: 1\nnotify:\n  - {webhook: %q, events: [node-failed]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n", srv.URL))
	var mu sync.Mutex
	dropped := 0
	n := notify.New(g.Notify, notify.Options{QueueSize: 2, Record: func(o notify.Outcome) {
		mu.Lock()
		if strings.HasPrefix(o.Detail, "dropped") {
			dropped++
		}
		mu.Unlock()
	}})
	for i := 0; i < 1000; i++ {
		n.Send(notify.Message{Event: "node-failed", Node: fmt.Sprint(i)})
	}
	mu.Lock()
	d := dropped
	mu.Unlock()
	if d == 0 {
		t.Fatal("1000 sends on a queue of 2 behind a silent receiver dropped none")
	}
	n.Close(10 * time.Millisecond)
}

// TestZoneCertified: certifying a trust zone tells the targets that asked
// for zone-certified (signed, with the zone and the next zone to start),
// and only them; the delivery is journaled.
func TestZoneCertified(t *testing.T) {
	dir := t.TempDir()
	cell, other := &receiver{}, &receiver{}
	srvCell := httptest.NewServer(cell.handler(200, nil))
	defer srvCell.Close()
	srvOther := httptest.NewServer(other.handler(200, nil))
	defer srvOther.Close()
	t.Setenv("TEST_ZONE_KEY", "zone-k3y")
	g := enginetest.MustGraph(t, dir, fmt.Sprintf(`version: 1
name: zoned
zones:
  - {id: core, title: Trusted core}
  - {id: clinical, title: Care}
notify:
  - {name: cell, webhook: %q, secret: "${secret:TEST_ZONE_KEY}", events: [zone-certified]}
  - {name: other, webhook: %q, events: [node-failed]}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core}
  - {id: dpi, kind: application, plugin: noop, zone: clinical, depends_on: [ad]}
`, srvCell.URL, srvOther.URL))
	st := enginetest.MustStore(t, dir)
	e := engine.New(st, &enginetest.FakeHost{}, engine.Options{})
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	// Certification happens on the stopped run, as `reprise certify` does.
	w := notify.Watch(st, notify.WatchOptions{Options: notify.Options{RetryFor: time.Second, FirstDelay: 20 * time.Millisecond}})
	e2 := engine.New(st, &enginetest.FakeHost{}, engine.Options{OnEvent: w.OnEvent})
	if err := e2.Certify(context.Background(), res.RunID, "core", "ann", "AD rebuilt from clean media"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(cell.events()) == 1 })
	w.Close()
	cell.mu.Lock()
	m, body, sig := cell.got[0], cell.body[0], cell.sigs[0]
	cell.mu.Unlock()
	if m.Event != "zone-certified" || m.Zone != "core" || m.Run != res.RunID ||
		!strings.Contains(m.Text, "certified by ann") || !strings.Contains(m.Text, "zone clinical may start") {
		t.Errorf("message %+v", m)
	}
	if want := notify.Sign([]byte("zone-k3y"), body); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if n := len(other.events()); n != 0 {
		t.Errorf("a target that did not ask for zone-certified got %d messages", n)
	}
	found := false
	_ = st.Journal(res.RunID, 0, func(e state.Entry) error {
		if e.Type == state.EntryNotified && e.Data["event"] == "zone-certified" && e.Data["target"] == "cell" {
			found = true
		}
		return nil
	})
	if !found {
		t.Error("the delivery is not journaled")
	}
}

// TestFailingTargetCostsFewAttempts: fifty messages for a target that
// answers 500 cost a few attempts per backoff period (a few deliveries in
// flight per target), not fifty; once it is back every message arrives.
func TestFailingTargetCostsFewAttempts(t *testing.T) {
	var mu sync.Mutex
	up, whileDown, got := false, 0, map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m notify.Message
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		defer mu.Unlock()
		if !up {
			whileDown++
			w.WriteHeader(500)
			return
		}
		got[m.Node] = true
	}))
	defer srv.Close()
	g := enginetest.MustGraph(t, t.TempDir(), fmt.Sprintf("version: 1\nnotify:\n  - {webhook: %q, events: [node-failed]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n", srv.URL))
	n := notify.New(g.Notify, notify.Options{FirstDelay: 50 * time.Millisecond, RetryFor: time.Minute})
	for i := 0; i < 50; i++ {
		n.Send(notify.Message{Event: "node-failed", Node: fmt.Sprint(i)})
	}
	time.Sleep(400 * time.Millisecond)
	mu.Lock()
	down := whileDown
	up = true
	mu.Unlock()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 50 })
	n.Close(time.Second)
	// Four in flight, each retried at 50, 100, 200 ms: about 16 attempts.
	if down == 0 || down > 25 {
		t.Errorf("%d attempts while the target failed, for 50 messages (want a few per backoff period)", down)
	}
}
