package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ProtocolVersion is the version of what coordinators and agents write for
// each other in etcd: the items, offer batches, claims, results and result
// batches (keys.go, offer.go, zvalue.go) and the keys they live under. Bump
// it with any change one side of an earlier version would misread; a
// field added that the other side may ignore needs no bump.
//
// A group's rebuild lasts months, and agents on the zones' machines are
// upgraded at other times than the coordinators: the two sides check each
// other's version and do not talk across versions. An agent writes its
// version in its registration (AgentInfo.Protocol); a coordinator offers
// nothing to an agent of another version (logging it once), and counts it
// as no agent of its zone. A coordinator writes its version in each item
// and offer batch (Item.Protocol, OfferBatch.Protocol); an agent takes
// nothing written by a coordinator of another version (logging it once).
// Whatever else changes in a later version, these stay readable by every
// version: a registration is a JSON object with "name", "zone" and
// "protocol"; an item is a JSON object with "by", "zone" and "protocol"; an
// offer batch is one (packed or not, zvalue.go) with "by" and "protocol".
//
// Version 0 is a build from before versions (the field absent): it is
// treated as another version, since builds before versions did not all
// speak alike (packed batches, graph renditions).
const ProtocolVersion = 1

// protocolName names protocol v for an operator.
func protocolName(v int) string {
	if v == 0 {
		return "protocol 0 (a build from before protocol versions)"
	}
	return fmt.Sprintf("protocol %d", v)
}

// Compatible reports whether the agent speaks this build's protocol.
func (ai AgentInfo) Compatible() bool { return ai.Protocol == ProtocolVersion }

// Incompatibility says why the agent takes no step from a coordinator of
// this build ("" when it speaks its protocol).
func (ai AgentInfo) Incompatibility() string {
	if ai.Compatible() {
		return ""
	}
	if ai.Protocol < 0 {
		return "unreadable registration: offered no step"
	}
	return fmt.Sprintf("incompatible: speaks %s, this build %d: offered no step; upgrade it", protocolName(ai.Protocol), ProtocolVersion)
}

// ListAgents returns the registered (live) agents under k, by zone and
// name. A registration that does not decode is listed by its key's name,
// with Protocol -1.
func ListAgents(ctx context.Context, cli *clientv3.Client, k Keys) ([]AgentInfo, error) {
	resp, err := cli.Get(ctx, k.Agents(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list the agents under %s: %w", k.Agents(), err)
	}
	out := make([]AgentInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var ai AgentInfo
		if err := json.Unmarshal(kv.Value, &ai); err != nil {
			ai = AgentInfo{Name: string(kv.Key[len(k.Agents()):]), Protocol: -1}
		}
		out = append(out, ai)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Zone != out[j].Zone {
			return out[i].Zone < out[j].Zone
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// protoWarnings logs once per subject (an agent, a coordinator) and
// version that the other side speaks another protocol. Its caller holds
// the lock that guards it.
type protoWarnings map[string]int

// warn logs msg once for subject at version v; it returns whether it
// logged.
func (w protoWarnings) warn(log *zap.Logger, subject string, v int, msg string, fields ...zap.Field) bool {
	if old, ok := w[subject]; ok && old == v {
		return false
	}
	w[subject] = v
	log.Error(msg, append(fields, zap.Int("protocol", v), zap.Int("this_protocol", ProtocolVersion))...)
	return true
}

// checkClaimer logs, once per agent, that agent claimed node's call (one
// written unclaimed) though it speaks another protocol: a build from
// before protocol versions does not know to leave it.
func (d *Dispatcher) checkClaimer(agent, node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	la := d.agents[d.k.Agent(agent)]
	if la == nil || la.compatible() {
		return
	}
	d.otherProto.warn(d.log, "claim\x00"+agent, la.protocol,
		fmt.Sprintf("agent %s (zone %s) claimed a step though it speaks %s, this coordinator protocol %d (it does not know to leave steps of another protocol): upgrade it",
			agent, la.zone, protocolName(la.protocol), ProtocolVersion),
		zap.String("agent", agent), zap.String("node", node))
}

// sameProtocolLocked reports whether coordinator by speaks this agent's
// protocol (v: the version it wrote), and logs once per coordinator when
// it does not. a.mu is held.
func (a *Agent) sameProtocolLocked(by string, v int) bool {
	if v == ProtocolVersion {
		return true
	}
	a.otherProto.warn(a.log, by, v,
		fmt.Sprintf("coordinator %s speaks %s, this agent protocol %d: taking none of its steps; run coordinator and agent of the same protocol (upgrade the older)",
			by, protocolName(v), ProtocolVersion),
		zap.String("coordinator", by))
	return false
}

// peekProtocol reads the coordinator and protocol of an offer batch that
// does not decode as this version's.
func peekProtocol(v []byte) (by string, proto int, ok bool) {
	js, err := unpackValue(v)
	if err != nil {
		return "", 0, false
	}
	var h struct {
		By       string `json:"by"`
		Protocol int    `json:"protocol"`
	}
	if json.Unmarshal(js, &h) != nil {
		return "", 0, false
	}
	return h.By, h.Protocol, true
}
