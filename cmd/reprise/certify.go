package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/operate"
)

// certifyOptions are what certify needs.
type certifyOptions struct {
	State, Anchor string
	Run, Zone     string
	By, Comment   string
}

// runCertify certifies zone Zone of run Run (operate.Do).
func runCertify(ctx context.Context, o certifyOptions) (operate.Outcome, error) {
	return actOn(ctx, o.State, o.Anchor, holder("certify", o.Run, o.Zone), o.Run, func(ctx context.Context, a control.Actions) error {
		return a.Certify(ctx, o.Run, o.Zone, o.By, o.Comment)
	})
}

func newCertifyCmd() *cobra.Command {
	var o certifyOptions
	var f actionFlags
	c := &cobra.Command{
		Use:   "certify RUN ZONE --by NAME --comment TEXT",
		Short: "Certify a trust zone clean, so that the nodes of the next zone may start",
		Long: `Record that trust zone ZONE of run RUN is certified clean: by whom, when, and
what was checked. No node of a zone starts before every more trusted zone is
certified; a run stops (parked) when only such nodes are left, or waits
there with --wait. Certify once every node of the zone is done, most trusted
zone first. On a run going on the certification reaches it through its
control socket and the next zone's nodes start at once; on a stopped run
they start at the next resume. On an etcd state it goes through etcd to the
coordinator leading the run, from any machine (once the state has operators,
with an approver's token in REPRISE_TOKEN or REPRISE_TOKEN_FILE, also when
no coordinator leads and it is written to the etcd state here). The run
keeps the record and the journal an
entry "zone-certified"; status, plan and the reports show it.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("certify: want RUN and ZONE, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if strings.TrimSpace(o.By) == "" {
				return usageError("certify: --by NAME is required: the journal records who certified the zone")
			}
			if strings.TrimSpace(o.Comment) == "" {
				return usageError("certify: --comment TEXT is required: say what was checked")
			}
			o.Run, o.Zone, o.State, o.Anchor = args[0], args[1], *f.state, *f.anchor
			// On etcd, a coordinator leading the run applies it (from any machine).
			cmd := cluster.Command{Op: cluster.CmdCertify, Run: o.Run, Zone: o.Zone, By: o.By, Comment: o.Comment}
			_, sent, err := sendThroughCluster(c, clusterOf(os.Getenv("REPRISE_CLUSTER"), o.State), cmd)
			if err != nil {
				return err
			}
			out := operate.Outcome{Live: true}
			if !sent {
				// No coordinator took it: written here, as a coordinator
				// would decide (authorizeDirect).
				if o.By, err = authorizeDirect(o.State, cmd, o.By); err != nil {
					return err
				}
				if out, err = runCertify(c.Context(), o); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.OutOrStdout(), "zone %s of run %s certified by %s\n", o.Zone, o.Run, o.By)
			printNext(c.OutOrStdout(), out, o.Run, "the nodes of the next zone start now")
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&o.By, "by", "", "who certifies (required; kept in the journal)")
	c.Flags().StringVar(&o.Comment, "comment", "", "what was checked (required; kept in the journal)")
	return c
}
