package enginetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// MustGraph writes src as graph.yaml in dir and loads it.
func MustGraph(t testing.TB, dir, src string) *graphs.Graph {
	t.Helper()
	path := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Load(path)
	if err != nil {
		t.Fatalf("load graph:\n%s\n%v", src, err)
	}
	return g
}

// MustStore opens a fresh state file in dir (durable, as in production)
// and closes it when the test ends.
func MustStore(t testing.TB, dir string) *state.Store {
	t.Helper()
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{Holder: "test " + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// NodeStates returns the state of every node of a run, by id.
func NodeStates(t testing.TB, st state.Backend, runID string) map[string]state.NodeState {
	t.Helper()
	recs, err := st.Nodes(runID)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]state.NodeState, len(recs))
	for _, r := range recs {
		m[r.ID] = r.State
	}
	return m
}

// JournalTypes returns "type node" for each journal entry of a run.
func JournalTypes(t testing.TB, st state.Backend, runID string) []string {
	t.Helper()
	var out []string
	err := st.Journal(runID, 0, func(e state.Entry) error {
		out = append(out, strings.TrimSpace(string(e.Type)+" "+e.NodeID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ChainGraph returns the YAML of a graph of n noop nodes where node k
// depends on node k-1 when chain is true (else they are independent).
func ChainGraph(n int, chain bool) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: chain\ndefaults: {retry_delay: 1ms}\nnodes:\n")
	for k := 0; k < n; k++ {
		fmt.Fprintf(&b, "  - {id: n%04d, kind: infrastructure, plugin: noop", k)
		if chain && k > 0 {
			fmt.Fprintf(&b, ", depends_on: [n%04d]", k-1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}
