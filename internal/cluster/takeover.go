package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// unreadableProtocol stands, in WorkProtocolError.Found, for work whose
// protocol cannot be read (a value that does not decode).
const unreadableProtocol = -1

// WorkCount is how much work of one protocol version a run holds in etcd.
type WorkCount struct {
	Items  int // calls written unclaimed, or claimed by an agent (n/NODE/item)
	Offers int // offer batches (o/AGENT/ID)
}

// WorkProtocolError says that a run's work in etcd, left by the coordinator
// that led it, was written by a coordinator of another protocol version
// than this build's (or cannot be read): a coordinator of this build taking
// the run over would misread it (CheckWorkProtocol).
type WorkProtocolError struct {
	Run string
	// Prefix is the run's work prefix in etcd (Keys.Run).
	Prefix string
	// Found is the work of other versions than ProtocolVersion, by
	// version (-1: unreadable).
	Found map[int]WorkCount
}

// Versions returns the versions found, ascending (-1: unreadable).
func (e *WorkProtocolError) Versions() []int {
	vs := make([]int, 0, len(e.Found))
	for v := range e.Found {
		vs = append(vs, v)
	}
	sort.Ints(vs)
	return vs
}

// Error names the run, the versions found and what to do.
func (e *WorkProtocolError) Error() string {
	var found, builds []string
	for _, v := range e.Versions() {
		n := e.Found[v]
		var what []string
		if n.Items > 0 {
			what = append(what, plural(n.Items, "item"))
		}
		if n.Offers > 0 {
			what = append(what, plural(n.Offers, "offer batch"))
		}
		name := "unreadable work"
		if v != unreadableProtocol {
			name = protocolName(v)
			builds = append(builds, fmt.Sprint(v))
		}
		found = append(found, fmt.Sprintf("%s (%s)", name, strings.Join(what, ", ")))
	}
	msg := fmt.Sprintf("run %s: work in flight in etcd written by another protocol than this reprise's (protocol %d): %s; this coordinator would misread it, so it does not take the run over and has written nothing. ",
		e.Run, ProtocolVersion, strings.Join(found, "; "))
	if len(builds) > 0 {
		msg += fmt.Sprintf("Go on with it with a reprise build of protocol %s (`reprise --version` shows a build's, `reprise agent list` each agent's): `reprise resume %s`; or, ", strings.Join(builds, " or "), e.Run)
	} else {
		msg += "Or, "
	}
	return msg + fmt.Sprintf("once no agent of that protocol runs its steps any more, delete that work (`etcdctl del --prefix %s`) and resume the run with this reprise: its steps left running are asked Check before they run again",
		e.Prefix)
}

// plural is "1 item", "2 items", "2 offer batches".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ch") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// CheckWorkProtocol reads the work left in etcd under run — its items and
// offer batches, which carry the protocol of the coordinator that wrote
// them (Item.Protocol, OfferBatch.Protocol) — and returns a
// *WorkProtocolError when any was written by a coordinator of another
// protocol version than this build's, or cannot be read. A coordinator
// about to take a run over (a standby that won the lead, a resume) calls it
// before it writes anything: the dispatcher adopts the work it finds
// (Dispatcher, orphans), and would misread another version's. Work of this
// version, or none, returns nil. Claims, results and events carry no
// version: they are judged by the items and batches they belong to.
func CheckWorkProtocol(ctx context.Context, cli *clientv3.Client, k Keys, run string) error {
	resp, err := cli.Get(ctx, k.Run(run), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read the work of run %s: %w", run, err)
	}
	found := map[int]WorkCount{}
	for _, kv := range resp.Kvs {
		p, ok := k.parse(string(kv.Key))
		if !ok {
			continue
		}
		switch p.kind {
		case "item":
			var h struct {
				Protocol int `json:"protocol"`
			}
			v := unreadableProtocol
			if json.Unmarshal(kv.Value, &h) == nil {
				v = h.Protocol
			}
			if v != ProtocolVersion {
				n := found[v]
				n.Items++
				found[v] = n
			}
		case "offer":
			v := unreadableProtocol
			if _, proto, ok := peekProtocol(kv.Value); ok {
				v = proto
			}
			if v != ProtocolVersion {
				n := found[v]
				n.Offers++
				found[v] = n
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	return &WorkProtocolError{Run: run, Prefix: k.Run(run), Found: found}
}
