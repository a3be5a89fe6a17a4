package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// clusterFlags are run's and resume's flags for agents and failover.
type clusterFlags struct {
	url        string
	standby    bool
	agentsOnly bool
	ttl        time.Duration
}

func (f *clusterFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.url, "cluster", os.Getenv("REPRISE_CLUSTER"), "etcd://HOST:PORT[,…]/PREFIX: send the steps of zones served by agents (reprise agent) to them, and take the coordinators' election (default: the --state when it is an etcd URL; env REPRISE_CLUSTER; TLS from ETCDCTL_CACERT/CERT/KEY)")
	c.Flags().BoolVar(&f.standby, "standby", false, "with --cluster: wait while another coordinator leads this graph's run, take over when it dies (within --ttl + 2 s) and go on with its run")
	c.Flags().BoolVar(&f.agentsOnly, "agents-only", false, "with --cluster: run no step here; nodes without a zone go to any agent")
	c.Flags().DurationVar(&f.ttl, "ttl", cluster.DefaultTTL, "with --cluster: the leadership's lease: a standby takes over this long after the leader dies")
}

// target returns the cluster to use: --cluster, else an etcd --state; ok
// is false when there is none.
func (f *clusterFlags) target(statePath string) (u etcdconn.URL, ok bool, err error) {
	raw := f.url
	if raw == "" && etcdconn.IsURL(statePath) {
		raw = statePath
	}
	if raw == "" {
		if f.standby || f.agentsOnly {
			return u, false, usageError("--standby and --agents-only need --cluster etcd://HOST:PORT[,…]/PREFIX (or an etcd --state)")
		}
		return u, false, nil
	}
	if f.ttl < time.Second {
		return u, false, usageError("--ttl %s: want at least 1s", f.ttl)
	}
	u, err = etcdconn.Parse(raw)
	if err != nil {
		return u, false, withCode(exitUsage, err)
	}
	return u, true, nil
}

// coordinator is a run session's side of the cluster: its client, its
// leadership of the graph's run, and the dispatcher it builds.
type coordinator struct {
	f      clusterFlags
	u      etcdconn.URL
	cli    *clientv3.Client
	lead   *cluster.Leadership
	ctx    context.Context // cancelled when the leadership is lost
	cancel context.CancelFunc
	// tookOver is true for a standby that waited for a leader and won.
	tookOver bool
	waited   time.Time
	disp     *cluster.Dispatcher
	// sameStore: the run's state is on this cluster (an etcd --state on
	// the same members), so that offers go in the engine's commits.
	sameStore bool
}

// dialCluster connects to the cluster of f; nil without one.
func dialCluster(ctx context.Context, f clusterFlags, statePath string) (*coordinator, error) {
	u, ok, err := f.target(statePath)
	if err != nil || !ok {
		return nil, err
	}
	cli, err := etcdconn.Dial(ctx, u, etcdconn.Options{TLS: stateTLS.WithEnv()})
	if err != nil {
		return nil, err
	}
	same := false
	if etcdconn.IsURL(statePath) {
		if su, err := etcdconn.Parse(statePath); err == nil {
			same = sameMembers(su.Endpoints, u.Endpoints)
		}
	}
	return &coordinator{f: f, u: u, cli: cli, sameStore: same}, nil
}

// sameMembers reports whether two endpoint lists name the same members.
func sameMembers(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}

// elect takes the lead of graph's run; a standby waits for it (printing
// who leads), another coordinator without --standby is refused naming the
// leader.
func (co *coordinator) elect(ctx context.Context, stderr io.Writer, graph, command string) error {
	if co == nil {
		return nil
	}
	lead, err := cluster.Elect(ctx, cluster.ElectOptions{Client: co.cli, Keys: cluster.NewKeys(co.u.Root()), Graph: graph,
		Command: command, TTL: co.f.ttl, Standby: co.f.standby,
		OnWait: func(li cluster.LeaderInfo) {
			co.tookOver, co.waited = true, time.Now()
			fmt.Fprintf(stderr, "standby: graph %s is led by coordinator %s (host %s, pid %d, since %s); waiting to take over\n",
				graph, li.Name, li.Host, li.PID, li.Since.Local().Format(time.TimeOnly))
		}})
	if err != nil {
		if errors.Is(err, cluster.ErrLeaderLive) {
			return withCode(exitUsage, err)
		}
		return err
	}
	co.lead = lead
	co.ctx, co.cancel = context.WithCancel(context.Background())
	go func() {
		select {
		case <-lead.Lost():
			if co.ctx.Err() != nil {
				return // close resigned: the session is ending, not losing the lead
			}
			fmt.Fprintf(stderr, "lost the lead of graph %s (etcd unreachable past --ttl): another coordinator may lead now; cancelling this session\n", graph)
			co.cancel()
		case <-co.ctx.Done():
		}
	}()
	if co.tookOver {
		fmt.Fprintf(stderr, "standby: took over the lead of graph %s at %s (waited %s)\n", graph, time.Now().Local().Format("15:04:05.000"),
			time.Since(co.waited).Round(time.Millisecond))
	}
	return nil
}

// newHost is the engine's NewHost in a cluster: a dispatcher sending the
// steps of zones served by agents to them, the others to this machine's
// plugin host (none with --agents-only). journal appends the dispatcher's
// entries (agent lost, result refused) to the run's journal.
func (co *coordinator) newHost(journal func(ctx context.Context, run string, e *state.Entry) error) engine.NewHostFunc {
	return func(g *graphs.Graph, log *zap.Logger) (step.Host, error) {
		var local step.Host
		if !co.f.agentsOnly {
			h, err := newPluginHost(g, log)
			if err != nil {
				return nil, err
			}
			local = h
		}
		maxOps, err := maxTxnOps()
		if err != nil {
			return nil, err
		}
		co.disp = cluster.NewDispatcher(cluster.DispatcherOptions{Client: co.cli, Keys: cluster.NewKeys(co.u.Root()), Graph: g,
			Local: local, AgentsOnly: co.f.agentsOnly, Journal: journal, Logger: log, MaxTxnOps: maxOps, Prestart: co.sameStore})
		if agents := co.disp.Agents(); len(agents) > 0 {
			log.Info("agents serving zones", zap.Any("agents", agents))
		}
		return co.disp, nil
	}
}

// context is the session's context: ctx, cancelled too if the lead is
// lost.
func (co *coordinator) context(ctx context.Context) context.Context {
	if co == nil || co.ctx == nil {
		return ctx
	}
	return co.ctx
}

// close gives the lead up (a standby takes over at once) and the client.
func (co *coordinator) close() {
	if co == nil {
		return
	}
	if co.cancel != nil {
		co.cancel() // first: resigning below is not a lost lead
	}
	if co.lead != nil {
		co.lead.Resign()
	}
	co.cli.Close()
}

// waitForLock opens the state file for a standby's resume: while the
// leader holds it (a bbolt state has one writer), it waits.
func waitForLock(ctx context.Context, stderr io.Writer, path, who string) (*session, error) {
	said := false
	for {
		s, err := openSession(path, who)
		var locked *state.LockedError
		if err == nil || !errors.As(err, &locked) {
			return s, err
		}
		if !said {
			fmt.Fprintf(stderr, "standby: %v; waiting\n", err)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// takeOver goes on with run prev, left by the leader this standby took
// over from, as resume does: nodes left running are asked Check first.
func (s *session) takeOver(ctx context.Context, o sessionOptions, opts engine.Options, prev state.Run, std stdio) (runOutcome, error) {
	if err := s.co.checkWork(ctx, prev.ID); err != nil {
		return runOutcome{}, err
	}
	fmt.Fprintf(std.Err, "standby: going on with run %s of %s (%s)\n", prev.ID, prev.GraphName, progressOf(s.st, prev))
	if prev.Options.Parallelism > 0 && !o.ParallelismSet {
		opts.Parallelism = prev.Options.Parallelism
	}
	if err := s.start(o, opts, std.Err); err != nil {
		return runOutcome{}, err
	}
	res, err := s.do(ctx, func(ctx context.Context) (engine.Result, error) {
		return s.eng.ResumeWith(ctx, prev.ID, engine.ResumeOptions{By: opts.By})
	})
	return runOutcome{Result: res}, s.end(res, err)
}

// serveCommands applies the operators' commands sent through etcd
// (approve, certify, mark, retry from any machine) to the live run of eng,
// as the control socket does on this machine. Once st has operators, a
// command must carry the token of one whose role allows it (see
// authorizeCommand).
func (co *coordinator) serveCommands(eng *engine.Engine, st state.Backend, log *zap.Logger) {
	if co == nil || co.lead == nil {
		return
	}
	checker := &auth.Checker{Operators: st.Operators}
	go cluster.ServeCommands(co.ctx, cluster.ServeOptions{Client: co.cli, Keys: cluster.NewKeys(co.u.Root()), Name: co.lead.Info.Name,
		TTL: co.f.ttl, Live: eng.LiveRun, Logger: log,
		Authorize: func(_ context.Context, cmd cluster.Command, token string) (string, error) {
			return authorizeCommand(st.Operators, checker, cmd, token)
		},
		Apply: func(ctx context.Context, cmd *cluster.Command) (err error) {
			switch cmd.Op {
			case cluster.CmdApprove:
				return eng.Approve(ctx, cmd.Run, cmd.Node, cmd.By, cmd.Comment)
			case cluster.CmdCertify:
				return eng.Certify(ctx, cmd.Run, cmd.Zone, cmd.By, cmd.Comment)
			case cluster.CmdMark:
				return eng.Mark(ctx, cmd.Run, cmd.Node, cmd.By, cmd.Comment)
			case cluster.CmdRetry:
				// The live run's scheduler resets the nodes and runs them
				// again at once (the control socket's retry).
				cmd.Reset, err = eng.ResetNodes(ctx, cmd.Run, cmd.Node, cmd.Downstream, cmd.By)
				return err
			}
			return fmt.Errorf("unknown command %q", cmd.Op)
		}})
}

// commandActions are the roles' actions of the commands through etcd.
var commandActions = map[string]auth.Action{
	cluster.CmdApprove: auth.ActApprove, cluster.CmdCertify: auth.ActCertify,
	cluster.CmdMark: auth.ActMark, cluster.CmdRetry: auth.ActRetry,
}

// authorizeCommand decides whether an operator's command through etcd is
// applied, and returns the name it is journaled with. A state without
// operators takes a command as sent (its --by), as on one machine; once
// it has operators, the command must carry the token of one (checked
// against the state's argon2id hashes, as the dashboard does) whose role
// allows the command, and is journaled with that operator's name (a --by
// naming someone else is refused).
func authorizeCommand(operators func() ([]state.Operator, error), checker *auth.Checker, cmd cluster.Command, token string) (string, error) {
	act, ok := commandActions[cmd.Op]
	if !ok {
		return "", fmt.Errorf("unknown command %q", cmd.Op)
	}
	if token == "" {
		ops, err := operators()
		if err != nil {
			return "", fmt.Errorf("read the operators: %w", err)
		}
		if len(ops) == 0 {
			return cmd.By, nil
		}
		return "", fmt.Errorf("this state has operators: a command through etcd needs an operator's token (REPRISE_TOKEN or REPRISE_TOKEN_FILE; reprise operators add)")
	}
	op, err := checker.Check(token)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if !auth.Role(op.Role).Can(act) {
		return "", fmt.Errorf("operator %s (role %s) may not %s", op.Name, op.Role, act)
	}
	if cmd.By != "" && cmd.By != op.Name {
		return "", fmt.Errorf("--by %q but the token is operator %s's: a command is journaled with its token's operator", cmd.By, op.Name)
	}
	return op.Name, nil
}

// tokenEnv is the operator's token variables, moved out of the
// environment when the command starts (takeTokenEnv).
var tokenEnv struct {
	sync.Mutex
	vars map[string]string
}

// takeTokenEnv moves REPRISE_TOKEN and REPRISE_TOKEN_FILE from the
// process's environment into memory, where operatorToken reads them: the
// processes reprise starts — plugins (a vendor's code), exec steps, malware
// scanners, notification commands — would otherwise inherit the
// operator's token with the environment. (A resume started from the
// dashboard is handed its operator's token through a pipe: internal/web.)
func takeTokenEnv() {
	tokenEnv.Lock()
	defer tokenEnv.Unlock()
	for _, name := range []string{"REPRISE_TOKEN", "REPRISE_TOKEN_FILE"} {
		if v, ok := os.LookupEnv(name); ok {
			if tokenEnv.vars == nil {
				tokenEnv.vars = map[string]string{}
			}
			tokenEnv.vars[name] = v
			os.Unsetenv(name)
		}
	}
}

// tokenVar is the value of the token variable name, as the command found
// it (takeTokenEnv), or as the environment has it.
func tokenVar(name string) string {
	tokenEnv.Lock()
	defer tokenEnv.Unlock()
	if v, ok := tokenEnv.vars[name]; ok {
		return v
	}
	return os.Getenv(name)
}

// operatorToken is the operator's token for commands through etcd:
// $REPRISE_TOKEN, else the first line of the file $REPRISE_TOKEN_FILE
// names; "" for none. (Never a flag: a command line is visible to every
// user of the machine.)
func operatorToken() (string, error) {
	if t := strings.TrimSpace(tokenVar("REPRISE_TOKEN")); t != "" {
		return t, nil
	}
	path := tokenVar("REPRISE_TOKEN_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("REPRISE_TOKEN_FILE: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("REPRISE_TOKEN_FILE %s: empty", path)
	}
	return line, nil
}

// commandBy is the --by a command through etcd carries: by, unless it is
// the default ($USER) and the operator gives a token: the token's operator
// is then journaled.
func commandBy(c *cobra.Command, by string) string {
	if t, _ := operatorToken(); t != "" && !c.Flags().Changed("by") {
		return ""
	}
	return by
}

// approveThroughCluster sends an approval to the coordinator leading run
// runID through etcd (from any machine). sent is false when no coordinator
// leads it: the approval is then written to the state directly.
func approveThroughCluster(c *cobra.Command, clusterURL, runID, node, by, comment string) (sent bool, err error) {
	_, sent, err = sendThroughCluster(c, clusterURL, cluster.Command{Op: cluster.CmdApprove, Run: runID, Node: node, By: by, Comment: comment})
	return sent, err
}

// sendThroughCluster sends an operator's command to the coordinator leading
// its run through etcd (from any machine), with the operator's token when
// there is one (operatorToken), and waits until it is applied. sent is
// false when there is no cluster, or no coordinator leads the run: the
// command is then applied to the state directly by the caller. got is the
// coordinator's answer (a retry's nodes reset).
func sendThroughCluster(c *cobra.Command, clusterURL string, cmd cluster.Command) (got cluster.Command, sent bool, err error) {
	if clusterURL == "" {
		return cmd, false, nil
	}
	u, err := etcdconn.Parse(clusterURL)
	if err != nil {
		return cmd, false, withCode(exitUsage, err)
	}
	token, err := operatorToken()
	if err != nil {
		return cmd, false, withCode(exitUsage, err)
	}
	cli, err := etcdconn.Dial(c.Context(), u, etcdconn.Options{TLS: stateTLS.WithEnv()})
	if err != nil {
		return cmd, false, err
	}
	defer cli.Close()
	got, err = cluster.SendWith(c.Context(), cli, cluster.NewKeys(u.Root()), cmd, cluster.SendOptions{Pickup: 5 * time.Second, Token: token})
	if errors.Is(err, cluster.ErrNoLeader) {
		return cmd, false, nil
	}
	if err != nil {
		return got, true, err
	}
	fmt.Fprintf(c.ErrOrStderr(), "%s applied by coordinator %s (through etcd)\n", cmd.Op, got.PickedBy)
	return got, true, nil
}

// clusterOf is --cluster, else the --state when it is an etcd URL.
func clusterOf(clusterURL, statePath string) string {
	if clusterURL == "" && etcdconn.IsURL(statePath) {
		return statePath
	}
	return clusterURL
}
