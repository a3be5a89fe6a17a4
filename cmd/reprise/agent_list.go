package main

import (
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// newAgentListCmd is `reprise agent list`: the agents registered on an
// etcd state, with whether they speak this build's protocol.
func newAgentListCmd() *cobra.Command {
	var (
		stateURL string
		ef       etcdFlags
	)
	c := &cobra.Command{
		Use:   "list --state etcd://HOST:PORT[,…]/PREFIX",
		Short: "List the live agents: zone, slots, host, protocol, and whether this build's coordinators offer them steps",
		Long: `List the agents registered (alive: under their lease) on an etcd state. An
agent that speaks another protocol than this build (a coordinator or an agent
upgraded without the other) is listed "incompatible": a coordinator of this
build offers it no step, and it takes none of that coordinator's. Upgrade the
older side.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !etcdconn.IsURL(stateURL) {
				return usageError("--state %q: agents register on an etcd state, etcd://HOST:PORT[,HOST:PORT…]/PREFIX", stateURL)
			}
			u, err := etcdconn.Parse(stateURL)
			if err != nil {
				return withCode(exitUsage, err)
			}
			cli, err := etcdconn.Dial(c.Context(), u, etcdconn.Options{TLS: ef.tls.WithEnv()})
			if err != nil {
				return err
			}
			defer cli.Close()
			agents, err := cluster.ListAgents(c.Context(), cli, cluster.NewKeys(u.Root()))
			if err != nil {
				return err
			}
			if len(agents) == 0 {
				fmt.Fprintf(c.OutOrStdout(), "no agent registered on %s\n", u)
				return nil
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tZONE\tSLOTS\tHOST\tPID\tSINCE\tPROTOCOL\tSTATE")
			for _, ai := range agents {
				st := "ready"
				switch {
				case !ai.Compatible():
					st = ai.Incompatibility()
				case ai.Draining:
					st = "draining"
				}
				since := ""
				if !ai.Started.IsZero() {
					since = ai.Started.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", ai.Name, ai.Zone, ai.Slots, ai.Host, ai.PID, since, strconv.Itoa(ai.Protocol), st)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&stateURL, "state", os.Getenv("REPRISE_STATE"), "the etcd state: etcd://HOST:PORT[,HOST:PORT…]/PREFIX (env REPRISE_STATE)")
	ef.add(c)
	return c
}
