package host_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/step"
)

func TestExecBuiltin(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	workDir := t.TempDir()
	sh := func(script string) []any { return []any{"sh", "-c", script} }
	tests := []struct {
		name       string
		with       map[string]any
		wantStatus step.Status
		wantOut    map[string]string
		wantMsg    []string // substrings of the result message
		wantLogs   []string
	}{
		{
			name: "outputs and logs",
			with: map[string]any{"restore": sh(`echo "restoring $REPRISE_NODE attempt $REPRISE_ATTEMPT in $(pwd)"; echo oops >&2; ` +
				`echo "url=http://pacs:8080" >> "$REPRISE_OUTPUT"; echo "run=$REPRISE_RUN" >> "$REPRISE_OUTPUT"; echo "V=$MYVAR" >> "$REPRISE_OUTPUT"`),
				"env": map[string]any{"MYVAR": "x y"}},
			wantStatus: step.Succeeded,
			wantOut:    map[string]string{"url": "http://pacs:8080", "run": "run-1", "V": "x y"},
			wantLogs:   []string{"info: restoring pacs attempt 1 in " + workDir, "warn: oops"},
		},
		{
			name:       "non-zero exit quotes the last lines",
			with:       map[string]any{"restore": sh(`for i in $(seq 1 30); do echo line $i; done; exit 4`)},
			wantStatus: step.Failed,
			wantMsg:    []string{"exit status 4", "line 30", "line 21"},
		},
		{
			name:       "dir relative to the work dir",
			with:       map[string]any{"restore": sh(`pwd > "$REPRISE_OUTPUT.tmp"; echo "dir=$(pwd)" > "$REPRISE_OUTPUT"`), "dir": "."},
			wantStatus: step.Succeeded,
			wantOut:    map[string]string{"dir": workDir},
		},
		{
			name:       "missing working directory",
			with:       map[string]any{"restore": []any{"true"}, "dir": "no/such/dir"},
			wantStatus: step.Failed,
			wantMsg:    []string{"working directory", "no/such/dir", "not a folder"},
		},
		{
			name:       "missing restore is a config error",
			with:       map[string]any{"check": []any{"true"}},
			wantStatus: step.Failed,
			wantMsg:    []string{"with.restore: required field missing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req("exec", "pacs", tt.with)
			r.WorkDir = workDir
			var logs []string
			res, err := h.Restore(ctx, r, func(e step.Event) {
				if e.Kind == step.EventLog {
					logs = append(logs, e.Level+": "+e.Message)
				}
			})
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if res.Status != tt.wantStatus {
				t.Fatalf("status = %s (%s), want %s", res.Status, res.Message, tt.wantStatus)
			}
			for k, v := range tt.wantOut {
				if res.Outputs[k] != v {
					t.Errorf("output %s = %q, want %q (all: %v)", k, res.Outputs[k], v, res.Outputs)
				}
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(res.Message, m) {
					t.Errorf("message %q lacks %q", res.Message, m)
				}
			}
			if strings.Contains(res.Message, "line 20\n") {
				t.Errorf("message %q quotes more than the last lines", res.Message)
			}
			for _, l := range tt.wantLogs { // stdout and stderr interleave freely
				if !slices.Contains(logs, l) {
					t.Errorf("logs = %q, want %q among them", logs, l)
				}
			}
		})
	}
}

func TestExecCheckAndVerify(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	tests := []struct {
		name         string
		with         map[string]any
		wantRestored bool
		wantVerify   step.Status
	}{
		{"no commands", map[string]any{"restore": []any{"true"}}, false, step.Succeeded},
		{"passing", map[string]any{"restore": []any{"true"}, "check": []any{"true"}, "verify": []any{"true"}}, true, step.Succeeded},
		{"failing", map[string]any{"restore": []any{"true"}, "check": []any{"false"}, "verify": []any{"sh", "-c", "echo unhealthy; exit 1"}}, false, step.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := h.Check(ctx, req("exec", "n", tt.with))
			if err != nil || c.Restored != tt.wantRestored {
				t.Errorf("Check = %+v, %v; want restored=%v", c, err, tt.wantRestored)
			}
			v, err := h.Verify(ctx, req("exec", "n", tt.with))
			if err != nil || v.Status != tt.wantVerify {
				t.Errorf("Verify = %+v, %v; want %s", v, err, tt.wantVerify)
			}
		})
	}
}

// TestExecCheckOutputs: a check command that finds the node restored
// reports its outputs the way a restore command does (KEY=VALUE lines in
// $REPRISE_OUTPUT); a failing check reports none.
// TestExecDrillEnv: exec commands learn from REPRISE_DRILL whether the run
// is a drill (1) or not (0), to restore into the exercise environment.
func TestExecDrillEnv(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	for _, drill := range []bool{false, true} {
		r := req("exec", "dpi-db", map[string]any{"restore": []any{"sh", "-c", `echo "drill=$REPRISE_DRILL" >> "$REPRISE_OUTPUT"`}})
		r.Drill = drill
		res, err := h.Restore(ctx, r, nil)
		want := "0"
		if drill {
			want = "1"
		}
		if err != nil || res.Outputs["drill"] != want {
			t.Errorf("drill %v: outputs %v, %v; want REPRISE_DRILL=%s", drill, res.Outputs, err, want)
		}
	}
}

func TestExecCheckOutputs(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	script := `echo "dsn=pg://db:5432/dpi" >> "$REPRISE_OUTPUT"; exit $0`
	c, err := h.Check(ctx, req("exec", "db", map[string]any{"restore": []any{"true"}, "check": []any{"sh", "-c", script, "0"}}))
	if err != nil || !c.Restored || c.Outputs["dsn"] != "pg://db:5432/dpi" {
		t.Errorf("Check = %+v, %v; want restored with dsn", c, err)
	}
	c, err = h.Check(ctx, req("exec", "db", map[string]any{"restore": []any{"true"}, "check": []any{"sh", "-c", script, "1"}}))
	if err != nil || c.Restored || len(c.Outputs) != 0 {
		t.Errorf("failing Check = %+v, %v; want not restored, no outputs", c, err)
	}
}

func TestExecSecretsNotEchoed(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 30*time.Second)
	const secret = "s3cr3t-Passw0rd"
	r := req("exec", "db", map[string]any{"restore": []any{"sh", "-c", "exit 2", secret}, "env": map[string]any{"PGPASSWORD": secret}})
	var seen []string
	res, err := h.Restore(ctx, r, func(e step.Event) { seen = append(seen, e.Message) })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Message, secret) || strings.Contains(strings.Join(seen, "\n"), secret) {
		t.Errorf("secret leaked: message %q, events %q", res.Message, seen)
	}
	r.Mode = step.ModeDryRun
	res, err = h.Restore(ctx, r, nil)
	if err != nil || res.Status != step.Succeeded || strings.Contains(res.Message, secret) {
		t.Errorf("dry run = %+v, %v", res, err)
	}
}
