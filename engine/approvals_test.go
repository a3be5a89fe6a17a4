package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// fourEyesGraph: lab-reentry needs 2 approvers by the vital default (its
// dependent lab-report is vital); key-gate needs 3 of its own.
const fourEyesGraph = `version: 1
name: four-eyes
defaults: {approvals: {vital: 2}}
nodes:
  - {id: lis, kind: application, plugin: noop}
  - {id: lab-reentry, kind: data, plugin: manual, depends_on: [lis]}
  - {id: lab-report, kind: data, plugin: noop, criticality: vital, depends_on: [lab-reentry]}
  - {id: key-gate, kind: data, plugin: manual, approvals: 3}
  - {id: plain-gate, kind: data, plugin: manual, criticality: low}
`

// TestFourEyesGateParked: on a parked run a gate that needs 2 approvals
// stays waiting after the first, refuses the same approver again (any
// case), opens with a second distinct one; each approval is journaled.
func TestFourEyesGateParked(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, fourEyesGraph)
	st := enginetest.MustStore(t, dir)
	e := engine.New(st, gateHost(), engine.Options{})
	ctx := context.Background()
	res, err := e.Start(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Approve(ctx, res.RunID, "lab-reentry", "alice", "records checked"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := st.Node(res.RunID, "lab-reentry"); rec.State != state.NodeWaiting || rec.ApprovedBy != "" {
		t.Fatalf("after one approval of two: %+v, want still waiting", rec)
	}
	err = e.Approve(ctx, res.RunID, "lab-reentry", " Alice ", "again")
	if !errors.Is(err, state.ErrAlreadyApproved) || !strings.Contains(err.Error(), "Alice  already approved this gate (1 of 2 approvals so far: alice)") {
		t.Fatalf("same approver twice: %v", err)
	}
	if err := e.Approve(ctx, res.RunID, "lab-reentry", "bob", "confirmed"); err != nil {
		t.Fatal(err)
	}
	rec, _ := st.Node(res.RunID, "lab-reentry")
	if rec.State != state.NodeSucceeded || rec.ApprovedBy != "alice, bob" {
		t.Fatalf("after two approvals: %+v", rec)
	}
	var types, bys []string
	st.Journal(res.RunID, 0, func(e state.Entry) error {
		if e.NodeID == "lab-reentry" && e.By != "" {
			types = append(types, string(e.Type))
			bys = append(bys, e.By+":"+e.Data["given"]+"/"+e.Data["needed"])
		}
		return nil
	})
	if strings.Join(types, ",") != "approval,approved" || strings.Join(bys, ",") != "alice:1/2,bob:2/2" {
		t.Fatalf("journal: %v %v", types, bys)
	}
	// A low gate without its own approvals needs one; key-gate three.
	if err := e.Approve(ctx, res.RunID, "plain-gate", "carol", ""); err != nil {
		t.Fatal(err)
	}
	if rec, _ := st.Node(res.RunID, "plain-gate"); rec.State != state.NodeSucceeded {
		t.Fatalf("plain gate: %+v", rec)
	}
	for i, who := range []string{"a", "b", "c"} {
		if err := e.Approve(ctx, res.RunID, "key-gate", who, ""); err != nil {
			t.Fatal(err)
		}
		rec, _ := st.Node(res.RunID, "key-gate")
		if open := rec.State == state.NodeSucceeded; open != (i == 2) {
			t.Fatalf("key-gate after %d approvals: %s", i+1, rec.State)
		}
	}
	ap, err := engine.GateApprovals(st.Journal, res.RunID, "key-gate")
	if err != nil || len(ap) != 2 || ap[0].By != "a" || ap[1].By != "b" {
		t.Fatalf("GateApprovals = %+v, %v (the opening one is the approved entry)", ap, err)
	}
}

// TestFourEyesGateLive: the same through a live --wait run's scheduler.
func TestFourEyesGateLive(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, strings.Replace(fourEyesGraph, "  - {id: key-gate, kind: data, plugin: manual, approvals: 3}\n  - {id: plain-gate, kind: data, plugin: manual, criticality: low}\n", "", 1))
	st := enginetest.MustStore(t, dir)
	waiting := make(chan string, 1)
	given := make(chan string, 4)
	e := engine.New(st, gateHost(), engine.Options{Wait: true, OnEvent: func(ev engine.Event) {
		if ev.Type == engine.EventNodeFinished && ev.State == state.NodeWaiting {
			waiting <- ev.RunID
		}
		if ev.Type == engine.EventApprovalGiven {
			given <- ev.Message
		}
	}})
	done := make(chan engine.Result, 1)
	go func() {
		res, err := e.Start(context.Background(), g)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var runID string
	select {
	case runID = <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("gate never reached")
	}
	ctx := context.Background()
	if err := e.Approve(ctx, runID, "lab-reentry", "alice", ""); err != nil {
		t.Fatal(err)
	}
	if msg := <-given; msg != "approval 1 of 2 by alice (approved so far: alice)" {
		t.Errorf("event message %q", msg)
	}
	if err := e.Approve(ctx, runID, "lab-reentry", "alice", ""); !errors.Is(err, state.ErrAlreadyApproved) {
		t.Fatalf("same approver twice, live: %v", err)
	}
	select {
	case <-done:
		t.Fatal("the run ended after one approval of two")
	case <-time.After(100 * time.Millisecond):
	}
	if err := e.Approve(ctx, runID, "lab-reentry", "bob", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.Status != state.RunSucceeded {
			t.Errorf("status %s, want succeeded", res.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not finish after the second approval")
	}
	if rec, _ := st.Node(runID, "lab-reentry"); rec.ApprovedBy != "alice, bob" {
		t.Errorf("approved by %q", rec.ApprovedBy)
	}
}
