package sim_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/examples/hospital/internal/sim"
)

func TestParseHPRIM(t *testing.T) {
	good := "H|~^\\&|||LAB-MIDDLEWARE\nP|1||282129900100757|\nOBR|1||M1|GLU^Glucose\nOBX|1|NM|GLU^Glucose||5.4|mmol/L|||||F\nL|1||1|1\n"
	rows, err := sim.ParseHPRIM([]byte(good))
	if err != nil || len(rows) != 1 || rows[0]["value"] != "5.4" || rows[0]["result_id"] != "M1" || rows[0]["ins"] != "282129900100757" {
		t.Fatalf("good file: %v, %v", rows, err)
	}
	tests := []struct{ name, in, want string }{
		{"truncated", strings.TrimSuffix(good, "L|1||1|1\n"), "truncated"},
		{"counts differ", strings.Replace(good, "L|1||1|1", "L|1||2|2", 1), "end line says 2 patients"},
		{"no header", strings.TrimPrefix(good, "H|~^\\&|||LAB-MIDDLEWARE\n"), "want an H header"},
		{"value not a number", strings.Replace(good, "||5.4|", "||high|", 1), "not a number"},
		{"after the end", good + "P|2||x|\n", "after the L"},
		{"unknown record", strings.Replace(good, "OBR|", "XYZ|", 1), "unexpected record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sim.ParseHPRIM([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckINS(t *testing.T) {
	for _, tt := range []struct {
		ins string
		ok  bool
	}{{"282129900100757", true}, {"282129900100758", false}, {"28212990010075", false}, {"28212990010075A", false}} {
		if err := sim.CheckINS(tt.ins); (err == nil) != tt.ok {
			t.Errorf("CheckINS(%s): %v, want ok=%v", tt.ins, err, tt.ok)
		}
	}
}

// restoreImages does what the vendor plugin does in the graph: copies the
// PACS image backup into the work folder.
func restoreImages(t *testing.T, env sim.Env) {
	t.Helper()
	copyDir(t, filepath.Join(env.Backups, "pacs-images"), env.Data("pacs-images"))
}

func TestPACSRefusesTamperedImages(t *testing.T) {
	env := mustHospital(t, nil)
	mustRestore(t, env, "backup-vault", "pacs")
	restoreImages(t, env)
	pacs, _ := sim.FindApp("pacs")
	s := sim.NewService(env, pacs)
	if err := s.Load(); err != nil {
		t.Fatalf("intact images: %v", err)
	}
	// The vendor plugin's temporary file of an interrupted copy is not an error.
	if err := os.WriteFile(filepath.Join(env.Data("pacs-images"), "1.2.250.1.999.3", ".restore-123"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sim.NewService(env, pacs).Load(); err != nil {
		t.Fatalf("with a vendor temporary file: %v", err)
	}
	img := filepath.Join(env.Data("pacs-images"), "1.2.250.1.999.3", "0001.dcm")
	if err := os.WriteFile(img, []byte("encrypted by ransomware"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := sim.NewService(env, pacs).Load()
	if err == nil || !strings.Contains(err.Error(), "1.2.250.1.999.3/0001.dcm: sha256") {
		t.Fatalf("tampered image: got %v, want it named", err)
	}
}

func TestPortTakenIsNamed(t *testing.T) {
	env := mustHospital(t, nil)
	env.PortBase = freePortBase(t)
	lis, _ := sim.FindApp("lis")
	ln, err := net.Listen("tcp", env.HTTPAddr(lis))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = sim.Run(context.Background(), env, "lis")
	if err == nil || !strings.Contains(err.Error(), env.HTTPAddr(lis)) || !strings.Contains(err.Error(), "HOSPITAL_PORT_BASE") {
		t.Fatalf("got %v, want the port and HOSPITAL_PORT_BASE named", err)
	}
}

func TestReconnectComesLast(t *testing.T) {
	env := mustHospital(t, nil)
	env.PortBase = freePortBase(t)
	mustRestore(t, env, infra...)
	ids := make([]string, 0, len(sim.Apps))
	for _, a := range sim.Apps {
		mustRestore(t, env, a.ID)
		ids = append(ids, a.ID)
	}
	restoreImages(t, env)
	ctx := context.Background()

	startServices(t, env, ids[:len(ids)-1]...) // all but hr
	if _, err := sim.Reconnect(ctx, io.Discard, env, false); err == nil || !strings.Contains(err.Error(), "application hr") {
		t.Fatalf("with hr down: got %v, want a refusal naming hr", err)
	}
	startServices(t, env, "hr")
	if _, err := sim.Reconnect(ctx, io.Discard, env, true); err == nil || !strings.Contains(err.Error(), "not reconnected yet") {
		t.Fatalf("check before reconnecting: got %v", err)
	}
	out, err := sim.Reconnect(ctx, io.Discard, env, false)
	if err != nil {
		t.Fatal(err)
	}
	if out["rules"] != "11" { // 7 restored rules + 4 partners
		t.Errorf("rules %v, want 11", out)
	}
	if _, err := sim.Reconnect(ctx, io.Discard, env, true); err != nil {
		t.Fatalf("check after reconnecting: %v", err)
	}
	rules, _ := os.ReadFile(filepath.Join(env.Work, "state", "firewall-open.csv"))
	if !strings.Contains(string(rules), "allow,servers,health-insurance,443") || strings.Contains(string(rules), "allow,any,internet") {
		t.Errorf("rule set:\n%s", rules)
	}
	// A restored file altered afterwards: no reconnection.
	edit(t, filepath.Join(env.Data("finance"), "orders.csv"), "PO00001", "PO99999")
	if _, err := sim.Reconnect(ctx, io.Discard, env, false); err == nil || !strings.Contains(err.Error(), "orders.csv") {
		t.Fatalf("with tampered finance data: got %v", err)
	}
}
