package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// etcdBackend is what an etcd state served (Options.Backend) offers: its
// client and its URL, whose prefix roots the agents' keys.
type etcdBackend interface {
	Client() *clientv3.Client
	Path() string
}

// agentKeys returns the client and keys of the agents of the state
// served; ok is false on a state file.
func (s *Server) agentKeys() (cli *clientv3.Client, k cluster.Keys, ok bool) {
	eb, isEtcd := s.opts.Backend.(etcdBackend)
	if !isEtcd {
		return nil, k, false
	}
	u, err := etcdconn.Parse(eb.Path())
	if err != nil {
		return nil, k, false
	}
	return eb.Client(), cluster.NewKeys(u.Root()), true
}

// loadAgents reads, on an etcd state, the agents of d's zones and its
// steps waiting for one (cluster.ReadAgentView: one transaction) into d.
func (s *Server) loadAgents(d *runData) {
	cli, k, ok := s.agentKeys()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := cluster.ReadAgentView(ctx, cli, k, d.M)
	if err != nil {
		d.AgentsErr = err.Error()
		return
	}
	d.Agents = &v
}

// agentsMark is what changes when run's agents panel may: each agent's
// registration (key and revision: a new registration is a new revision),
// how many offer batches the run holds, how many of its steps are
// written for the agents and claimed (not its events' keys, which change
// as a step logs), and the coordinators in the elections. One transaction
// of four ranges, without values (keys from etcd's in-memory index, or
// counts), at most every agentsEvery of a watched run. ok is false on a state file or when etcd does not answer.
func (s *Server) agentsMark(ctx context.Context, run string) (mark string, ok bool) {
	cli, k, isEtcd := s.agentKeys()
	if !isEtcd {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(k.Agents(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(k.Run(run)+"o/", clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(k.Run(run)+"n/", clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		// The coordinators' elections (every graph's: a handful of keys):
		// a coordinator taking the lead, standing by or gone.
		clientv3.OpGet(k.Leader(""), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return "", false
	}
	var b strings.Builder
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		fmt.Fprintf(&b, "%s/%d;", kv.Key, kv.ModRevision)
	}
	items, claims := 0, 0
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		switch key := string(kv.Key); {
		case strings.HasSuffix(key, "/item"):
			items++
		case strings.HasSuffix(key, "/claim"):
			claims++
		}
	}
	fmt.Fprintf(&b, "o%d;i%d;c%d;", resp.Responses[1].GetResponseRange().Count, items, claims)
	for _, kv := range resp.Responses[3].GetResponseRange().Kvs {
		fmt.Fprintf(&b, "%s;", kv.Key)
	}
	return b.String(), true
}

// agentsEvery bounds how often a watched run's agents are looked at
// (Options.Poll when longer).
const agentsEvery = time.Second
