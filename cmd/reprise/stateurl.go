package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/web"
)

// A --state value is a state file, or an etcd cluster:
// etcd://HOST:PORT[,HOST:PORT…]/PREFIX (engine/state/etcdstate). On etcd
// there is no file lock and no control socket: readers read the cluster,
// writers coordinate through its transactions.

// stateTLS holds --etcd-cacert, --etcd-cert and --etcd-key of the command
// being run (one command per process); empty ones come from ETCDCTL_*.
var stateTLS etcdconn.TLS

// addEtcdTLSFlags adds the client TLS flags of an etcd --state.
func addEtcdTLSFlags(c *cobra.Command) {
	if c.Flags().Lookup("etcd-cacert") != nil {
		return
	}
	c.Flags().StringVar(&stateTLS.CACert, "etcd-cacert", "", "with an etcd --state: PEM bundle of the CAs of the etcd members (env ETCDCTL_CACERT)")
	c.Flags().StringVar(&stateTLS.Cert, "etcd-cert", "", "with an etcd --state: PEM client certificate (env ETCDCTL_CERT)")
	c.Flags().StringVar(&stateTLS.Key, "etcd-key", "", "with an etcd --state: PEM private key of --etcd-cert (env ETCDCTL_KEY)")
}

// parseStateURL parses an etcd --state; a bad one is a usage error (exit 2).
func parseStateURL(raw string) (etcdconn.URL, error) {
	u, err := etcdconn.Parse(raw)
	if err != nil {
		return u, withCode(exitUsage, fmt.Errorf("--state: %w", err))
	}
	return u, nil
}

// envMaxTxnOps names the etcd cluster's --max-txn-ops when its members run
// with less than etcd's default (128, what reprise assumes): every command
// that opens an etcd state keeps each level of its transactions within it.
// An environment variable, as ETCDCTL_* are: it describes the cluster, not
// one command, and the processes reprise starts (a resume from the
// dashboard) inherit it.
const envMaxTxnOps = "REPRISE_ETCD_MAX_TXN_OPS"

// minMaxTxnOps is the lowest REPRISE_ETCD_MAX_TXN_OPS taken: a node's change
// is its record, its journal key and the run's head, under a comparison.
const minMaxTxnOps = 8

// maxTxnOps returns REPRISE_ETCD_MAX_TXN_OPS, or 0 (etcd's default) when it
// is unset; a value that is not a whole number of at least minMaxTxnOps is
// a usage error (exit 2) naming it.
func maxTxnOps() (int, error) {
	raw := strings.TrimSpace(os.Getenv(envMaxTxnOps))
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < minMaxTxnOps {
		return 0, usageError("%s=%q: want the etcd members' --max-txn-ops, a whole number of at least %d (etcd's default: %d)",
			envMaxTxnOps, raw, minMaxTxnOps, etcdstate.DefaultMaxTxnOps)
	}
	return n, nil
}

// explainEtcd adds what to do to an etcd error the operator can fix: a
// transaction refused for its number of operations means that the members
// run with a --max-txn-ops below what reprise was told (envMaxTxnOps).
func explainEtcd(err error) error {
	if !errors.Is(err, rpctypes.ErrTooManyOps) {
		return err
	}
	if v := os.Getenv(envMaxTxnOps); v != "" {
		return fmt.Errorf("%w (%s=%s is above the etcd members' --max-txn-ops: set it to their value)", err, envMaxTxnOps, v)
	}
	return fmt.Errorf("%w (the etcd members run with a --max-txn-ops below etcd's default of %d: set %s to their value)",
		err, etcdstate.DefaultMaxTxnOps, envMaxTxnOps)
}

// openEtcd opens the etcd state of an etcd:// --state. It fails within the
// dial timeout, naming the endpoints, when no member answers; while the
// cluster has no quorum, writes wait and say so on stderr.
func openEtcd(raw string, readOnly bool) (*etcdstate.Store, error) {
	u, err := parseStateURL(raw)
	if err != nil {
		return nil, err
	}
	maxOps, err := maxTxnOps()
	if err != nil {
		return nil, err
	}
	tlsFiles := stateTLS.WithEnv()
	if _, err := tlsFiles.Config(); err != nil {
		var ue *etcdconn.UsageError
		if errors.As(err, &ue) {
			return nil, withCode(exitUsage, err)
		}
		return nil, err
	}
	return etcdstate.Open(context.Background(), u, etcdstate.Options{
		Dial:      etcdconn.Options{TLS: tlsFiles},
		ReadOnly:  readOnly,
		MaxTxnOps: maxOps,
		OnWait: func(err error) {
			if err != nil {
				fmt.Fprintf(os.Stderr, "reprise: waiting for etcd at %s (%v): nothing is recorded, so nothing new starts, until a quorum of members answers; Ctrl-C stops\n", u, err)
			} else {
				fmt.Fprintf(os.Stderr, "reprise: etcd at %s answers again; going on\n", u)
			}
		},
	})
}

// etcdLive returns the run a coordinator leads now on st's cluster: the
// newest running run whose graph's election has a leader ("" if none).
func etcdLive(st *etcdstate.Store) string {
	runs, err := st.Runs()
	if err != nil {
		return ""
	}
	for _, r := range runs {
		if etcdLeads(st, r) {
			return r.ID
		}
	}
	return ""
}

// etcdLeads reports whether a coordinator runs run now: it is recorded
// running and its graph's election has a leader.
func etcdLeads(st *etcdstate.Store, run state.Run) bool {
	if run.Status != state.RunRunning {
		return false
	}
	u, err := etcdconn.Parse(st.Path())
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := st.Client().Get(ctx, cluster.NewKeys(u.Root()).Leader(run.GraphName)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	return err == nil && resp.Count > 0
}

// refuseLive refuses an operator's direct write to run runID on etcd
// while a coordinator runs it (on a state file, the file's lock does
// that): the coordinator's engine would not know of it.
func refuseLive(st state.Backend, runID string) error {
	et, ok := st.(*etcdstate.Store)
	if !ok {
		return nil
	}
	run, err := et.Run(runID)
	if err != nil || !etcdLeads(et, run) {
		return nil
	}
	return fmt.Errorf("run %s of %s is being run by a coordinator (its graph's election on %s has a leader): stop it first (a gate is approved with `reprise approve`, which goes through the coordinator)", runID, run.GraphName, et.Path())
}

// etcdLogPath is where the JSON log of a run on etcd goes: a file in the
// working directory named after the prefix (there is no state file to put
// it beside).
func etcdLogPath(raw string) string {
	u, err := etcdconn.Parse(raw)
	if err != nil {
		return "reprise-etcd.log"
	}
	return "reprise-etcd-" + strings.ReplaceAll(u.Prefix, "/", "-") + ".log"
}

// openReadOnly opens the state for reading only: the file (no control
// socket), or etcd.
func openReadOnly(path string) (state.Backend, error) {
	if etcdconn.IsURL(path) {
		return openEtcd(path, true)
	}
	return state.Open(path, state.Options{ReadOnly: true})
}

// serveState returns the web options of the state serve shows: the file
// (which must exist), or etcd, opened for the operators' actions.
func serveState(path string) (web.Options, func(), error) {
	if !etcdconn.IsURL(path) {
		if _, err := os.Stat(path); err != nil {
			return web.Options{}, nil, fmt.Errorf("serve: no state file at %s: nothing has run here yet (use --state or REPRISE_STATE to name another)", path)
		}
		return web.Options{StatePath: path}, func() {}, nil
	}
	st, err := openEtcd(path, false)
	if err != nil {
		return web.Options{}, nil, err
	}
	return web.Options{StatePath: path, Backend: st, LogPath: logPath(path), ResumeArgs: etcdTLSArgs(stateTLS.WithEnv()),
		Live: func() string { return etcdLive(st) }}, func() { st.Close() }, nil
}

// etcdTLSArgs are the --etcd-cacert/--etcd-cert/--etcd-key flags of the
// files of t (made absolute), for a reprise process started by this one
// (a resume from the dashboard) to reach etcd as this one does. They are
// file paths: no secret is on the command line.
func etcdTLSArgs(t etcdconn.TLS) []string {
	var args []string
	for _, f := range []struct{ flag, path string }{{"--etcd-cacert", t.CACert}, {"--etcd-cert", t.Cert}, {"--etcd-key", t.Key}} {
		if f.path == "" {
			continue
		}
		if abs, err := filepath.Abs(f.path); err == nil {
			f.path = abs
		}
		args = append(args, f.flag, f.path)
	}
	return args
}
