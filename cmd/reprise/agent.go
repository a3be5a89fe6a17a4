package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/runsession"
)

// etcdFlags are the client TLS flags of the commands that talk to etcd.
type etcdFlags struct{ tls etcdconn.TLS }

func (f *etcdFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.tls.CACert, "etcd-cacert", "", "PEM bundle of the CAs of the etcd members (env ETCDCTL_CACERT)")
	c.Flags().StringVar(&f.tls.Cert, "etcd-cert", "", "PEM client certificate for etcd (env ETCDCTL_CERT)")
	c.Flags().StringVar(&f.tls.Key, "etcd-key", "", "PEM private key of --etcd-cert (env ETCDCTL_KEY)")
}

func newAgentCmd() *cobra.Command {
	var (
		stateURL, zone, name string
		slots                int
		ttl                  time.Duration
		ef                   etcdFlags
	)
	c := &cobra.Command{
		Use:   "agent --state etcd://HOST:PORT[,…]/PREFIX --zone ZONE",
		Short: "Run the steps of one zone on this machine, taken from the coordinator through etcd",
		Long: `Run the steps of one zone on this machine (inside the zone: beside its
hypervisor, its backup vault, its machines). The agent registers under a
lease, takes the steps of its zone's nodes from the runs that a coordinator
(reprise run or resume with the same etcd state) dispatches, each claimed
with a compare-and-swap transaction, at most --slots at a time, runs them
through this machine's plugins (the graph's plugin paths and pins resolve
here: a pin mismatch fails the step, naming plugin, path and hashes), and
writes their events, outputs and results back. Configuration placeholders,
secrets included, resolve with this machine's environment: secrets never
travel through etcd.

If the agent dies or loses etcd past --ttl, its lease expires: the
coordinator journals its running steps "left running by lost agent NAME" and
gives them to another agent of the zone, which asks Check first; a result
it writes afterwards is refused (fencing) and journaled.

The first SIGINT or SIGTERM stops taking steps and lets the running ones
finish; the second cancels them and hands them back to the zone.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !etcdconn.IsURL(stateURL) {
				return usageError("--state %q: an agent needs an etcd state, etcd://HOST:PORT[,HOST:PORT…]/PREFIX", stateURL)
			}
			u, err := etcdconn.Parse(stateURL)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if zone == "" {
				return usageError("--zone is required: the zone whose steps this agent runs")
			}
			if slots < 1 {
				return usageError("--slots %d: want at least 1", slots)
			}
			if ttl < time.Second {
				return usageError("--ttl %s: want at least 1s", ttl)
			}
			if name == "" {
				host, _ := os.Hostname()
				name = host + "-" + zone
			}
			maxOps, err := maxTxnOps()
			if err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// As a run (session.start): an agent keeps little alive and
				// allocates per step; GOGC in the environment still decides.
				debug.SetGCPercent(400)
			}
			log := agentLogger()
			defer log.Sync()
			cli, err := etcdconn.Dial(c.Context(), u, etcdconn.Options{TLS: ef.tls.WithEnv()})
			if err != nil {
				return err
			}
			defer cli.Close()
			a := cluster.NewAgent(cluster.AgentOptions{Client: cli, Keys: cluster.NewKeys(u.Root()), Name: name, Zone: zone,
				Slots: slots, TTL: ttl, NewHost: newAgentHost, Logger: log, MaxTxnOps: maxOps})
			rctx, cancel := context.WithTimeout(c.Context(), 30*time.Second)
			err = a.Register(rctx)
			cancel()
			if err != nil {
				if errors.Is(err, cluster.ErrNameTaken) {
					return withCode(exitUsage, err)
				}
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "agent %s: zone %s, %d slots, lease %s, on %s\n", name, zone, slots, ttl, u)
			drain, stopDrain := context.WithCancel(context.Background())
			hard, stopHard := context.WithCancel(context.Background())
			defer stopDrain()
			defer stopHard()
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, runsession.Signals()...)
			defer signal.Stop(sigs)
			go func() {
				n := 0
				for sig := range sigs {
					n++
					if n == 1 {
						log.Warn("signal received: taking no new step, letting the running ones finish; send it again to cancel them and hand them back", zap.String("signal", sig.String()))
						stopDrain()
					} else {
						log.Warn("second signal: cancelling the running steps and handing them back", zap.String("signal", sig.String()))
						stopHard()
						return
					}
				}
			}()
			return a.Run(drain, hard)
		},
	}
	c.Flags().StringVar(&stateURL, "state", os.Getenv("REPRISE_STATE"), "the etcd state: etcd://HOST:PORT[,HOST:PORT…]/PREFIX (env REPRISE_STATE)")
	c.Flags().StringVar(&zone, "zone", "", "the zone whose steps this agent runs (a zone id of the graphs)")
	c.Flags().StringVar(&name, "name", "", "the agent's name, unique among live agents (default HOST-ZONE)")
	c.Flags().IntVar(&slots, "slots", cluster.DefaultSlots, "steps run at once")
	c.Flags().DurationVar(&ttl, "ttl", cluster.DefaultTTL, "lease: how long after the agent dies or loses etcd its steps go to another agent")
	ef.add(c)
	c.AddCommand(newAgentListCmd())
	return c
}

// agentLogger writes the agent's log lines, JSON, on stderr.
func agentLogger() *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(os.Stderr), zapcore.InfoLevel)
	return zap.New(core)
}

// newAgentHost is the agent's local plugin host of a graph.
var newAgentHost = func(g *graphs.Graph, log *zap.Logger) step.Host {
	h, _ := newPluginHost(g, log)
	return h
}
