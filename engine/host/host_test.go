package host_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/step"
)

func TestNoopRestore(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 30*time.Second)
	var events []step.Event
	res, err := h.Restore(ctx, req("noop", "milestone", map[string]any{"outputs": map[string]any{"phase": "2"}}),
		func(e step.Event) { events = append(events, e) })
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.Status != step.Succeeded || res.Outputs["phase"] != "2" {
		t.Errorf("result = %+v, want succeeded with phase=2", res)
	}
	want := []step.Event{{Kind: step.EventOutput, Key: "phase", Value: "2"}}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %+v, want %+v", events, want)
	}
	info, err := h.Describe(ctx, "noop")
	if err != nil || info.Name != "noop" || info.Version == "" {
		t.Errorf("Describe = %+v, %v", info, err)
	}
}

func TestConcurrentCallsShareOneProcess(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	var wg sync.WaitGroup
	pids := make([]string, 16)
	errs := make([]error, 16)
	for i := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.Restore(ctx, req("crashy", fmt.Sprintf("n%d", i), map[string]any{"do": "ok"}), nil)
			pids[i], errs[i] = res.Outputs["pid"], err
		}()
	}
	wg.Wait()
	for i := range pids {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if pids[i] == "" || pids[i] != pids[0] {
			t.Fatalf("call %d served by pid %q, call 0 by %q: want one process", i, pids[i], pids[0])
		}
	}
}

func TestUnknownPlugin(t *testing.T) {
	h := newHost(t, hostOpts(t))
	_, err := h.Restore(ctxT(t, 10*time.Second), req("pharmacy", "n", nil), nil)
	if err == nil || !strings.Contains(err.Error(), `plugin "pharmacy"`) || !strings.Contains(err.Error(), "not declared") {
		t.Errorf("err = %v, want an undeclared plugin error naming it", err)
	}
}

func TestRequestFieldsReachPlugin(t *testing.T) {
	h := newHost(t, hostOpts(t))
	r := req("crashy", "pacs", map[string]any{"do": "ok"})
	r.Inputs = map[string]map[string]string{"storage": {"mount": "/mnt/san"}}
	r.Mode, r.Attempt, r.WorkDir, r.Drill = step.ModeDryRun, 3, "/srv/graphs", true
	res, err := h.Restore(ctxT(t, 30*time.Second), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"input": "/mnt/san", "mode": "dry=true attempt=3 kind=application run=run-1 workdir=/srv/graphs drill=true"}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
		}
	}
}
