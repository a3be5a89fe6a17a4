package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

func newStateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "state",
		Short: "Move run state between a state file and an etcd cluster",
	}
	c.AddCommand(newStateCopyCmd())
	return c
}

// stateCopyOpts are the options of `reprise state copy`.
type stateCopyOpts struct {
	from, to string
	run      string // "" for every run of from
}

// copied is what state copy did of one run.
type copied struct {
	Run      string `json:"run"`
	Entries  int    `json:"entries"`
	Nodes    int    `json:"nodes"`
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head"`
}

func newStateCopyCmd() *cobra.Command {
	var o stateCopyOpts
	var asJSON bool
	c := &cobra.Command{
		Use:   "copy --from FILE_OR_URL --to FILE_OR_URL [RUN]",
		Short: "Copy runs between state files and etcd, journal and hashes unchanged",
		Long: `Copy a run (or every run) from one state to another: a state file, or
etcd://HOST:PORT[,HOST:PORT…]/PREFIX, either way. Node records and journal
entries are copied byte for byte with their hashes, so that
` + "`reprise log --verify`" + ` says the same on both sides; the copy is verified
before it is written and again where it landed. A run that already exists
at the destination is never overwritten. A live run is refused: a state
file held by a running reprise, or on etcd a running run whose graph has a
coordinator; stop it first (the copy would fall behind it at once).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.run = args[0]
			}
			res, err := runStateCopy(c.Context(), o)
			if err != nil {
				return err
			}
			return printCopied(c.OutOrStdout(), o, res, asJSON)
		},
	}
	c.Flags().StringVar(&o.from, "from", "", "state to copy from: a state file or etcd://HOST:PORT[,…]/PREFIX (required)")
	c.Flags().StringVar(&o.to, "to", "", "state to copy to: a state file (created if missing) or etcd://HOST:PORT[,…]/PREFIX (required)")
	c.Flags().BoolVar(&asJSON, "json", false, `print what was copied as JSON: [{"run", "entries", "nodes", "head_seq", "head"}]`)
	addEtcdTLSFlags(c)
	return c
}

func printCopied(w io.Writer, o stateCopyOpts, res []copied, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	for _, r := range res {
		fmt.Fprintf(w, "copied run %s: %d nodes, %d journal entries, head %d %.12s…\n", r.Run, r.Nodes, r.Entries, r.HeadSeq, r.HeadHash)
	}
	fmt.Fprintf(w, "%d run(s) copied from %s to %s; the journal verifies on both sides\n", len(res), o.from, o.to)
	return nil
}

// runStateCopy copies the runs of o.from to o.to: every run is checked
// first (it exists, is not live, verifies, is not at the destination), so
// that a refusal writes nothing.
func runStateCopy(ctx context.Context, o stateCopyOpts) ([]copied, error) {
	if o.from == "" || o.to == "" {
		return nil, usageError("state copy: --from and --to are required")
	}
	if o.from == o.to {
		return nil, usageError("state copy: --from and --to are both %s", o.from)
	}
	src, err := openCopySource(o.from)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	ids, err := runsToCopy(src, o)
	if err != nil {
		return nil, err
	}
	var copies []*state.RunCopy
	for _, id := range ids {
		cp, err := src.(state.Copier).ExportRun(id)
		if err != nil {
			return nil, err
		}
		rep, err := cp.Verify()
		if err != nil {
			return nil, err
		}
		if !rep.OK {
			return nil, fmt.Errorf("state copy: run %s does not verify in %s (%s, entry %d: %s): not copied; `reprise log --verify %s --state %s` says more",
				id, o.from, rep.Level, rep.FirstBad, rep.Problem, id, o.from)
		}
		copies = append(copies, cp)
	}
	dst, err := openStore(o.to, holder("state copy --to", o.to))
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	for _, id := range ids {
		if _, err := dst.Run(id); err == nil {
			return nil, fmt.Errorf("state copy: run %s is already in %s: refusing to overwrite it: %w", id, o.to, state.ErrRunExists)
		} else if !errors.Is(err, state.ErrRunNotFound) {
			return nil, err
		}
	}
	var out []copied
	for _, cp := range copies {
		if err := dst.(state.Copier).ImportRun(ctx, cp); err != nil {
			return out, fmt.Errorf("state copy to %s: %w", o.to, err)
		}
		rep, err := dst.Verify(cp.Run.ID)
		if err != nil {
			return out, err
		}
		want, _ := cp.Verify()
		if !rep.OK || rep.HeadSeq != want.HeadSeq || rep.HeadHash != want.HeadHash {
			return out, fmt.Errorf("state copy: run %s does not verify in %s after the copy (%s: %s; head %d %.12s…, the source's %d %.12s…)",
				cp.Run.ID, o.to, rep.Level, rep.Problem, rep.HeadSeq, rep.HeadHash, want.HeadSeq, want.HeadHash)
		}
		out = append(out, copied{Run: cp.Run.ID, Entries: rep.Entries, Nodes: len(cp.Nodes), HeadSeq: rep.HeadSeq, HeadHash: rep.HeadHash})
	}
	return out, nil
}

// openCopySource opens the source of a copy for reading: a state file that
// no running reprise holds, or etcd.
func openCopySource(from string) (state.Backend, error) {
	if etcdconn.IsURL(from) {
		return openEtcd(from, true)
	}
	st, err := state.Open(from, state.Options{ReadOnly: true})
	var locked *state.LockedError
	if errors.As(err, &locked) {
		return nil, fmt.Errorf("state copy: %w; a live run is not copied: stop it (or wait for it to end) first", err)
	}
	return st, err
}

// runsToCopy returns o.run, or every run of src; a live run is refused.
func runsToCopy(src state.Backend, o stateCopyOpts) ([]string, error) {
	var runs []state.Run
	if o.run != "" {
		r, err := runByID(src, o.run)
		if err != nil {
			return nil, err
		}
		runs = []state.Run{r}
	} else {
		all, err := src.Runs()
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("state copy: no run in %s", o.from)
		}
		runs = all
	}
	live := ""
	if et, ok := src.(*etcdstate.Store); ok {
		live = etcdLive(et)
	}
	var ids []string
	for _, r := range runs {
		if r.ID == live {
			return nil, fmt.Errorf("state copy: run %s is live (a coordinator leads graph %s on %s): copy it once it has stopped", r.ID, r.GraphName, o.from)
		}
		ids = append(ids, r.ID)
	}
	return ids, nil
}
