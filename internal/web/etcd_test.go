package web_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
	"github.com/reprise-si/reprise/internal/web"
)

// TestAPIOnEtcd serves a run kept on a real 3-member etcd cluster
// (Options.Backend): the API reads it, and operators' approvals, retries
// and marks are written to etcd and journaled with their names.
func TestAPIOnEtcd(t *testing.T) {
	c := etcdtest.Start(t, 3)
	u, err := etcdconn.Parse(c.URL("web/reprise"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := enginetest.MustGraph(t, t.TempDir(), webGraph)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		switch req.Plugin {
		case "manual":
			return step.Result{Status: step.Waiting, Message: "sign"}, nil
		case "exec":
			return step.Result{Status: step.Failed, Message: "tape unreadable"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	res, err := engine.New(st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, path: u.String(), run: res.RunID, tokens: map[string]string{}}
	for name, role := range map[string]auth.Role{"vic": auth.RoleViewer, "otto": auth.RoleOperator, "ann": auth.RoleApprover,
		"bob": auth.RoleApprover, "root": auth.RoleAdmin} {
		op, tok, err := auth.NewOperator(name, role, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutOperator(op); err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = tok
	}
	s, err := web.New(web.Options{StatePath: u.String(), Backend: st, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.server = httptest.NewServer(s), s
	defer func() { s.Close(); f.srv.Close() }()

	run := "/api/v1/runs/" + f.run
	f.want("vic", "GET", "/api/v1/runs", "", 200, `"id": "`+f.run+`"`)
	f.want("vic", "GET", run, "", 200, `"run": "`+f.run+`"`)
	f.want("vic", "GET", run+"/nodes/ad", "", 200, `"owner": "IT lead"`)
	f.want("ann", "POST", run+"/nodes/gate/approve", `{"comment":"checked"}`, 200, "1 of 2")
	f.want("bob", "POST", run+"/nodes/gate/approve", `{"comment":"confirmed"}`, 200, "node gate approved by bob")
	f.want("otto", "POST", run+"/nodes/tape/retry", ``, 200, "tape reset by otto")
	f.want("root", "POST", run+"/nodes/tape/mark", `{"reason":"restored by hand from paper"}`, 200, "marked done by root")
	var by []string
	st.Journal(f.run, 0, func(e state.Entry) error {
		if e.By != "" {
			by = append(by, string(e.Type)+":"+e.By)
		}
		return nil
	})
	if got := strings.Join(by, ","); got != "approval:ann,approved:bob,reset:otto,marked:root" {
		t.Errorf("journaled actions on etcd: %s", got)
	}
	if rep, err := st.Verify(f.run); err != nil || !rep.OK {
		t.Errorf("Verify on etcd: %+v, %v", rep, err)
	}
}
