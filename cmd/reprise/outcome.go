package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// printOutcome prints a run's outcome on w (as JSON with asJSON) and
// returns the exit code its status gives.
func printOutcome(w io.Writer, res engine.Result, asJSON bool) error {
	if asJSON {
		if err := writeJSON(w, res); err != nil {
			return err
		}
	} else {
		printResult(w, res)
	}
	return exitForStatus(res.Status)
}

// exitForStatus is the exit code of a run that ended with status s.
func exitForStatus(s state.RunStatus) error {
	switch s {
	case state.RunSucceeded:
		return nil
	case state.RunParked:
		return withCode(exitParked, nil)
	case state.RunInterrupted:
		return withCode(exitInterrupted, nil)
	default:
		return withCode(exitFailedNodes, nil)
	}
}

func printResult(w io.Writer, res engine.Result) {
	done := res.Counts[state.NodeSucceeded] + res.Counts[state.NodeSkipped]
	if res.Counts == nil && res.Status == state.RunSucceeded {
		done = res.Total // a resume of a run already done counts nothing
	}
	fmt.Fprintf(w, "run %s %s: %d/%d nodes done\n", res.RunID, res.Status, done, res.Total)
	for _, f := range res.Failed {
		fmt.Fprintf(w, "  failed   %s: %s\n", f.ID, f.Error)
	}
	if n := len(res.Blocked); n > 0 {
		fmt.Fprintf(w, "  blocked  %d node(s) behind the failures\n", n)
	}
	for _, id := range res.Waiting {
		fmt.Fprintf(w, "  waiting  %s: approve with `reprise approve %s %s --by NAME`\n", id, res.RunID, id)
	}
	switch res.Status {
	case state.RunFailed, state.RunInterrupted, state.RunParked:
		fmt.Fprintf(w, "resume with `reprise resume %s`\n", res.RunID)
	}
}

// printProblems prints the problems of a *problemsError on w and turns it
// into exit 1 with nothing more to say; other errors are returned as they
// are.
func printProblems(w io.Writer, err error) error {
	var pe *problemsError
	if !errors.As(err, &pe) {
		return err
	}
	pe.print(w)
	return withCode(exitError, nil)
}

// dryRunPlan is what run --dry-run found: each node's would-be action.
type dryRunPlan struct {
	Graph   string            `json:"graph"`
	Drill   bool              `json:"drill"`
	Nodes   []engine.PlanItem `json:"nodes"`
	Invalid int               `json:"invalid"`
}

// dryRunGraph validates and checks every node of g through its plugin and
// writes nothing.
func dryRunGraph(ctx context.Context, g *graphs.Graph, opts engine.Options) (*dryRunPlan, error) {
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir})
	defer h.Close()
	items, err := engine.New(nil, h, opts).DryRun(ctx, g)
	if err != nil {
		return nil, err
	}
	p := &dryRunPlan{Graph: g.Name, Drill: opts.Drill, Nodes: items}
	for _, it := range items {
		if it.Action == engine.ActionInvalid {
			p.Invalid++
		}
	}
	return p, nil
}

// printDryRun prints run --dry-run's plan on w; invalid nodes exit 1.
func printDryRun(w io.Writer, p *dryRunPlan, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"graph": p.Graph, "drill": p.Drill, "nodes": p.Nodes, "invalid": p.Invalid}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tPLUGIN\tCRITICALITY\tWOULD\tDETAIL")
		for _, it := range p.Nodes {
			detail := it.Check
			if it.Error != "" {
				detail = it.Error
			}
			for _, pr := range it.Problems {
				detail += pr + "; "
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.ID, it.Plugin, it.Criticality, it.Action, detail)
		}
		tw.Flush()
		drill := ""
		if p.Drill {
			drill = " (drill)"
		}
		fmt.Fprintf(w, "dry run of %s%s: %d nodes, %d invalid; nothing was written\n", p.Graph, drill, len(p.Nodes), p.Invalid)
	}
	if p.Invalid > 0 {
		return withCode(exitError, fmt.Errorf("dry run: %d node(s) have an invalid configuration", p.Invalid))
	}
	return nil
}
