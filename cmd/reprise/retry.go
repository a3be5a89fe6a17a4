package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// retryOptions are what a retry sent to a run going on needs.
type retryOptions struct {
	State      string
	Run, Node  string
	Downstream bool
	By         string
}

// retrySent is a retry taken by the process that holds the state file.
type retrySent struct {
	Reset []string // the nodes put back to pending
	Live  bool     // that process runs the run: they run again now
}

// runRetryLive sends the retry to the process that holds the state file,
// through its control socket; sent is false when no process serves one
// (the run is stopped: this process runs the retry itself).
func runRetryLive(ctx context.Context, o retryOptions) (res retrySent, sent bool, err error) {
	if etcdconn.IsURL(o.State) {
		return retrySent{}, false, nil // no control socket: the retry runs here
	}
	c, err := control.Dial(control.SocketPath(o.State))
	if errors.Is(err, control.ErrNoServer) {
		return retrySent{}, false, nil
	}
	if err != nil {
		return retrySent{}, false, err
	}
	live, _ := c.Live()
	ids, err := c.ResetNodes(ctx, o.Run, o.Node, o.Downstream, o.By)
	return retrySent{Reset: ids, Live: live == o.Run}, true, err
}

func newRetryCmd() *cobra.Command {
	var f runFlags
	var downstream, dryRun bool
	var by string
	c := &cobra.Command{
		Use:   "retry RUN NODE",
		Short: "Run a node again (and with --downstream everything after it), and only that",
		Long: `Reset a node to pending (with --downstream, its descendants too: succeeded
ones run again), journal the reset with who asked (--by), and run those nodes
only: other failed nodes of the run stay failed and other pending nodes wait
(` + "`reprise resume`" + ` runs them). On a run going on in another process
(another terminal, or started from the dashboard) the retry goes through its
control socket: the nodes run again there, at once, with what the failure
blocked after them; on an etcd state (or with --cluster), through etcd to the
coordinator leading the run, from any machine (with the operator's token in
REPRISE_TOKEN or REPRISE_TOKEN_FILE once the state has operators). With no
coordinator leading, the retry runs here (after the same check of the token
on an etcd state). With --dry-run, print the nodes that would run again and
change nothing (--json: as JSON). Exit codes as for run.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			runID, node := args[0], args[1]
			if by == "" {
				by = operatorName()
			}
			if dryRun {
				return printRetryPlan(c, *f.state, runID, node, downstream, f.json)
			}
			o := retryOptions{State: *f.state, Run: runID, Node: node, Downstream: downstream, By: by}
			res, sent, err := runRetryLive(c.Context(), o)
			if err != nil {
				return err
			}
			if sent {
				printRetrySent(c, o, res)
				return nil
			}
			cmd := cluster.Command{Op: cluster.CmdRetry, Run: runID, Node: node, Downstream: downstream, By: commandBy(c, by)}
			if !f.cluster.standby {
				// On etcd, a coordinator leading the run runs the nodes
				// again at once (from any machine).
				got, sent, err := sendThroughCluster(c, clusterOf(f.cluster.url, o.State), cmd)
				if err != nil {
					return err
				}
				if sent {
					o.By = got.By
					printRetrySent(c, o, retrySent{Reset: got.Reset, Live: true})
					return nil
				}
			}
			// No coordinator took it: the retry runs here, as a
			// coordinator would decide (authorizeDirect).
			if by, err = authorizeDirect(o.State, cmd, by); err != nil {
				return err
			}
			sa := authorizeRetry(o.State, by)
			return resumeRun(c, f, runID, "retry", sa, func(ctx context.Context, e *engine.Engine, id string) (engine.Result, error) {
				return e.Retry(ctx, id, node, downstream, sa.by)
			}, nil, false)
		},
	}
	f.add(c)
	c.Flags().BoolVar(&downstream, "downstream", false, "also run again every node that depends on it")
	c.Flags().StringVar(&by, "by", "", "who asks for the retry (default: $USER)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the nodes that would run again, change nothing")
	return c
}

func printRetrySent(c *cobra.Command, o retryOptions, res retrySent) {
	w := c.OutOrStdout()
	if len(res.Reset) == 0 {
		fmt.Fprintf(w, "retry of %s in run %s: nothing to reset (already pending)\n", o.Node, o.Run)
		return
	}
	fmt.Fprintf(w, "run %s: %s reset to pending by %s\n", o.Run, strings.Join(res.Reset, ", "), o.By)
	if res.Live {
		fmt.Fprintln(w, "the run is going on: they run again now")
	} else {
		fmt.Fprintf(w, "written by the process that holds the state file; continue with `reprise resume %s` once it has ended\n", o.Run)
	}
}

// printRetryPlan prints what retry would reset, from the state file opened
// read-only.
func printRetryPlan(c *cobra.Command, path, runID, node string, downstream, asJSON bool) error {
	st, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer st.Close()
	items, err := engine.New(st, nil, engine.Options{}).PlanRetry(runID, node, downstream)
	if err != nil {
		return err
	}
	w := c.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"run": runID, "node": node, "downstream": downstream, "rerun": nonNilItems(items)})
	}
	if len(items) == 0 {
		fmt.Fprintf(w, "retry of %s in run %s: nothing to reset (already pending)\n", node, runID)
	}
	for _, it := range items {
		fmt.Fprintf(w, "  ! %s [%s]: %s\n", it.ID, it.State, it.Reason)
	}
	fmt.Fprintf(w, "dry run: %d node(s) would run again; nothing was changed\n", len(items))
	return nil
}

func nonNilItems(items []engine.EditItem) []engine.EditItem {
	if items == nil {
		return []engine.EditItem{}
	}
	return items
}
