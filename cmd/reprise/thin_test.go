package main

import (
	"bytes"
	"context"
	"testing"
)

// TestCommandsOnlyPrint: each command prints what its runX returns and
// nothing else: the command line's stdout equals runX's result printed by
// the command's own printer, on the same run.
func TestCommandsOnlyPrint(t *testing.T) {
	d, runID := mustDirectFailedRun(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		args   []string
		direct func() ([]byte, error)
	}{
		{"status --json", []string{"status", runID, "--json"}, func() ([]byte, error) {
			st, err := runStatus(ctx, statusOptions{StatePath: d.state, RunID: runID})
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			err = writeJSON(&b, newStatusOut(st))
			return b.Bytes(), err
		}},
		{"status --node", []string{"status", "--node", "broken"}, func() ([]byte, error) {
			st, err := runStatus(ctx, statusOptions{StatePath: d.state, Node: "broken"})
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			printNode(&b, st.Model, st.Node)
			if st.Crisis != nil {
				printNodeCrisis(&b, *st.Crisis, st.Node.ID)
			}
			return b.Bytes(), nil
		}},
		{"runs --json", []string{"runs", "--json"}, func() ([]byte, error) {
			rows, err := runRuns(ctx, runsOptions{StatePath: d.state})
			var b bytes.Buffer
			if err == nil {
				err = writeJSON(&b, rows)
			}
			return b.Bytes(), err
		}},
		{"log", []string{"log", runID}, func() ([]byte, error) {
			res, err := runLog(ctx, logOptions{StatePath: d.state, RunID: runID})
			var b bytes.Buffer
			if err == nil {
				err = printJournal(&b, &bytes.Buffer{}, res, false)
			}
			return b.Bytes(), err
		}},
		{"plan --json", []string{"plan", d.graph, "--json"}, func() ([]byte, error) {
			p, err := runPlan(ctx, planOptions{File: d.graph, Parallelism: 8})
			var b bytes.Buffer
			if err == nil {
				err = p.WriteJSON(&b)
			}
			return b.Bytes(), err
		}},
		{"graph --run", []string{"graph", "--run", runID}, func() ([]byte, error) {
			return runGraph(ctx, graphOptions{RunSet: true, Run: runID, StatePath: d.state, Format: "dot"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args[0] != "plan" {
				args = append(args, "--state", d.state)
			}
			out, stderr, code := runGraphsCmd(t, args...)
			if code != 0 {
				t.Fatalf("reprise %v: exit %d: %s", tt.args, code, stderr)
			}
			want, err := tt.direct()
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("reprise %v printed\n%s\nrunX printed\n%s", tt.args, out, want)
			}
		})
	}
}
