package state

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDurabilityAfterSIGKILL kills a process that Applies in a loop from
// several goroutines, at a random moment, several times: every change whose
// Apply had returned before the kill must be in the file, and the journal
// must verify.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s, "r1", 0)
	s.Close()
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	acked := map[string]int{} // node id → round; ids carry the helper's pid
	for round := range rounds {
		cmd, _, out := helper(t, "apply", path)
		stopAfter := 20 + rand.IntN(300)
		n := 0
		for n < stopAfter && out.Scan() {
			line := out.Text()
			id, ok := strings.CutPrefix(line, "ok ")
			if !ok {
				t.Fatalf("helper: %q", line)
			}
			acked[id] = round
			n++
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// Lines printed after our last read were acknowledged too.
		for out.Scan() {
			if id, ok := strings.CutPrefix(out.Text(), "ok "); ok {
				acked[id] = round
			}
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
		}
		rep, err := s.Verify("r1")
		if err != nil || !rep.OK {
			t.Fatalf("round %d: Verify after SIGKILL = %+v, %v", round, rep, err)
		}
		journaled := map[string]int{}
		_ = s.Journal("r1", 0, func(e Entry) error { journaled[e.NodeID]++; return nil })
		missing := 0
		for id := range acked {
			if _, err := s.Node("r1", id); err != nil {
				t.Errorf("round %d: node %s acknowledged but %v", round, id, err)
				missing++
			}
			if journaled[id] == 0 {
				t.Errorf("round %d: node %s acknowledged but not journaled", round, id)
			}
		}
		t.Logf("round %d: killed after %d acks; %d nodes acknowledged in all; %d entries verify", round, n, len(acked), rep.Entries)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if missing > 0 {
			t.FailNow()
		}
	}
}
