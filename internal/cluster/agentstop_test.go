package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

// envMark marks the plugin processes of a warmRig with a mark of its own.
const envMark = "REPRISE_TEST_MARK"

// markedProcs returns the live processes whose environment holds mark (a
// zombie's environment reads empty: it is not counted).
func markedProcs(t *testing.T, mark string) []int {
	t.Helper()
	paths, err := filepath.Glob("/proc/[0-9]*/environ")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("\x00" + envMark + "=" + mark + "\x00")
	var pids []int
	for _, p := range paths {
		env, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		if bytes.Contains(append([]byte{0}, env...), want) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// setWarmUp sets the testWarmUp hook until the test ends.
func setWarmUp(t *testing.T, f func(ctx context.Context, hash string) func()) {
	testWarmUp.Store(&f)
	t.Cleanup(func() { testWarmUp.Store(nil) })
}

// TestAgentStopWaitsForWarmUps: an agent stopped while the warm-ups of a
// graph just published are in progress (held by the test at their start,
// or between the two plugins a warm-up starts) returns from Run only once
// they have ended; then no host of it is left open and no plugin process
// it started is alive. The warm-ups are held until the agent is told to
// stop and, had Run not waited for them, until it returned: a warm-up
// that went on after Run's final close of the hosts would build a host and
// start a plugin process that nothing closes.
func TestAgentStopWaitsForWarmUps(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("the plugin processes are found in /proc")
	}
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	for i, where := range []string{"start", "between"} {
		t.Run(where, func(t *testing.T) {
			k := NewKeys(fmt.Sprintf("stopwarm%d", i))
			mark := fmt.Sprintf("%d-%d-%d", os.Getpid(), time.Now().UnixNano(), i)
			rig := &warmRig{starts: map[string]int{}, mark: mark}
			a := NewAgent(AgentOptions{Client: cli, Keys: k, Name: "core-1", Zone: "core", Slots: 2, TTL: 5 * time.Second,
				NewHost: rig.newHost, Logger: zap.NewNop()})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := a.Register(ctx); err != nil {
				t.Fatal(err)
			}
			g := warmGraph(t, "stop-warm-"+where, 3, "", "  - {id: x, kind: application, plugin: exec, zone: core, with: {restore: [\"true\"]}}\n")
			hash := g.Hash()

			var mu sync.Mutex
			running, atReturn := 0, -1
			drain, stopDrain := context.WithCancel(context.Background())
			hard, stopHard := context.WithCancel(context.Background())
			returned := make(chan struct{})
			go func() {
				a.Run(drain, hard)
				mu.Lock()
				atReturn = running
				mu.Unlock()
				close(returned)
			}()
			t.Cleanup(func() { stopDrain(); stopHard(); <-returned })
			held := make(chan struct{}, 4)
			hold := func() {
				held <- struct{}{}
				<-drain.Done()
				select {
				case <-returned:
				case <-time.After(time.Second):
				}
			}
			setWarmUp(t, func(ctx context.Context, h string) func() {
				if h != hash {
					return func() {}
				}
				mu.Lock()
				running++
				mu.Unlock()
				if where == "start" {
					hold()
				}
				return func() {
					mu.Lock()
					running--
					mu.Unlock()
				}
			})
			if where == "between" {
				setHooks(t, func(agent, h, plugin string, err error) {
					if h == hash && plugin == "noop" {
						hold()
					}
				}, nil)
			}
			time.Sleep(500 * time.Millisecond) // the agent's watch in place
			if err := publishGraph(ctx, cli, k, g, hash); err != nil {
				t.Fatal(err)
			}
			want := 1 // between: warmEarly, its host found right (no warm after the parse)
			if where == "start" {
				want = 2 // warmEarly and, no host found after the parse, warm
			}
			for range want {
				select {
				case <-held:
				case <-ctx.Done():
					t.Fatal("the warm-ups did not start")
				}
			}
			if where == "between" && len(markedProcs(t, mark)) == 0 {
				t.Fatal("noop was started, but no process of this agent is found")
			}

			stopDrain()
			select {
			case <-returned:
			case <-ctx.Done():
				t.Fatal("Run did not return")
			}
			if pids := markedProcs(t, mark); len(pids) > 0 {
				t.Errorf("plugin processes %v alive after Run returned", pids)
			}
			mu.Lock()
			if atReturn != 0 {
				t.Errorf("%d warm-ups still running when Run returned", atReturn)
			}
			mu.Unlock()
			for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				mu.Lock()
				n := running
				mu.Unlock()
				if n == 0 {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("%d warm-ups still running 10s after Run returned", n)
				}
			}
			a.mu.Lock()
			left := len(a.hosts)
			a.mu.Unlock()
			rig.mu.Lock()
			for i, h := range rig.hosts {
				if !h.closed {
					t.Errorf("host %d of %d (built from %s) left open", i+1, len(rig.hosts), rig.built[i].Name)
				}
			}
			rig.mu.Unlock()
			if left > 0 {
				t.Errorf("%d hosts left to the stopped agent", left)
			}
			if pids := markedProcs(t, mark); len(pids) > 0 {
				t.Errorf("plugin processes %v alive once the warm-ups ended", pids)
			}
		})
	}
}
