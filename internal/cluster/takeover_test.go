package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestCheckWorkProtocol: the work a coordinator finds under a run it is
// about to take over is judged by the protocol its items and offer batches
// carry: none, or only this version's (claims, results and events beside
// them), is taken over; an item from a build before protocol versions (no
// "protocol"), an offer batch of a later version and a value that does not
// decode each refuse it, with an error naming the run, each version found
// with its count, and what to do (a reprise of that protocol, or the work
// deleted with the etcdctl command given, and a resume). Work of another
// run does not count.
func TestCheckWorkProtocol(t *testing.T) {
	c := etcdtest.Start(t, 1)
	k := cluster.NewKeys("cwp")
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	item := func(run, node string, proto int) string {
		b, _ := json.Marshal(cluster.Item{Call: "call-" + node, Protocol: proto, Op: "restore", Zone: "core", By: "coord",
			Req: step.Request{RunID: run, NodeID: node}})
		return string(b)
	}
	batch := func(run string, proto int, nodes ...string) string {
		ob := cluster.OfferBatch{By: "coord", Protocol: proto, Run: run}
		for _, n := range nodes {
			ob.Items = append(ob.Items, cluster.Item{Call: "call-" + n, Op: "restore", Req: step.Request{NodeID: n}})
		}
		b, _ := json.Marshal(ob)
		return string(b)
	}

	if err := cluster.CheckWorkProtocol(ctx, cli, k, "r1"); err != nil {
		t.Fatalf("no work: %v", err)
	}
	// This version's work, as a coordinator leaves it when it dies.
	put(k.Item("r1", "a"), item("r1", "a", cluster.ProtocolVersion))
	put(k.Claim("r1", "a"), `{"agent":"core-1","call":"call-a"}`)
	put(k.Event("r1", "a", 7, 1), `[{"kind":"log"}]`)
	put(k.Offer("r1", "core-1", "b1"), batch("r1", cluster.ProtocolVersion, "b", "c"))
	put(k.Batch("r1", "x1"), `[{"call":"call-d","node":"d"}]`)
	if err := cluster.CheckWorkProtocol(ctx, cli, k, "r1"); err != nil {
		t.Fatalf("work of this protocol: %v", err)
	}
	// Another run's work of another version is not r1's.
	put(k.Item("r2", "a"), item("r2", "a", 0))
	if err := cluster.CheckWorkProtocol(ctx, cli, k, "r1"); err != nil {
		t.Fatalf("r1 with r2's work of protocol 0: %v", err)
	}

	later := cluster.ProtocolVersion + 1
	put(k.Item("r1", "e"), strings.Replace(item("r1", "e", 0), `"protocol":0,`, "", 1)) // a build from before versions
	put(k.Item("r1", "f"), strings.Replace(item("r1", "f", 0), `"protocol":0,`, "", 1))
	put(k.Offer("r1", "core-2", "b2"), batch("r1", later, "g"))
	put(k.Item("r1", "h"), "not json")
	err := cluster.CheckWorkProtocol(ctx, cli, k, "r1")
	var we *cluster.WorkProtocolError
	if !errors.As(err, &we) {
		t.Fatalf("work of other protocols: %v, want a *WorkProtocolError", err)
	}
	want := map[int]cluster.WorkCount{0: {Items: 2}, later: {Offers: 1}, -1: {Items: 1}}
	if fmt.Sprint(we.Found) != fmt.Sprint(want) || we.Run != "r1" || we.Prefix != "/cwp/work/runs/r1/" {
		t.Errorf("found %v in run %s under %s, want %v in r1 under /cwp/work/runs/r1/", we.Found, we.Run, we.Prefix, want)
	}
	msg := err.Error()
	for _, w := range []string{
		fmt.Sprintf("run r1: work in flight in etcd written by another protocol than this reprise's (protocol %d): ", cluster.ProtocolVersion),
		"unreadable work (1 item); protocol 0 (a build from before protocol versions) (2 items); ",
		fmt.Sprintf("protocol %d (1 offer batch)", later),
		"it does not take the run over and has written nothing",
		fmt.Sprintf("a reprise build of protocol 0 or %d (`reprise --version` shows a build's, `reprise agent list` each agent's): `reprise resume r1`", later),
		"`etcdctl del --prefix /cwp/work/runs/r1/`",
		"asked Check before they run again",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("the error does not say %q:\n%s", w, msg)
		}
	}
	// Once that work is deleted (the command the error gives), the run is
	// taken over.
	if _, err := cli.Delete(ctx, we.Prefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if err := cluster.CheckWorkProtocol(ctx, cli, k, "r1"); err != nil {
		t.Fatalf("after the work was deleted: %v", err)
	}
}
