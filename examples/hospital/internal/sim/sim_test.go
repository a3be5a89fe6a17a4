package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/examples/hospital/internal/archive"
	"github.com/reprise-si/reprise/examples/hospital/internal/backups"
	"github.com/reprise-si/reprise/examples/hospital/internal/hl7"
	"github.com/reprise-si/reprise/examples/hospital/internal/sim"
)

const seedDir = "../../seed"

// infra lists the infrastructure components in a dependency order.
var infra = []string{"backup-vault", "network-core", "firewall", "dns", "dhcp", "ntp", "ad", "ad-gpo", "pki", "edr",
	"hypervisors", "san", "db-cluster", "file-servers", "workstations", "printers", "messaging", "remote-access"}

// freePortBase finds a base whose 100 ports look free on loopback.
func freePortBase(t *testing.T) int {
	t.Helper()
	for base := 40000 + (os.Getpid()%100)*100; base < 60000; base += 100 { // the demo test searches below 40000
		ok := true
		var open []net.Listener
		for _, a := range sim.Apps {
			for _, off := range []int{0, 50} {
				ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+a.Offset+off))
				if err != nil {
					ok = false
					break
				}
				open = append(open, ln)
			}
		}
		for _, ln := range open {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mustHospital copies the seed (then lets mutate change it), builds the
// backups and returns an Env on fresh folders.
func mustHospital(t *testing.T, mutate func(seed string)) sim.Env {
	t.Helper()
	dir := t.TempDir()
	env := sim.Env{Work: filepath.Join(dir, "work"), Backups: filepath.Join(dir, "backups"), Seed: filepath.Join(dir, "seed"), PortBase: sim.DefaultPortBase}
	copyDir(t, seedDir, env.Seed)
	if mutate != nil {
		mutate(env.Seed)
	}
	if err := backups.Build(env.Seed, env.Backups); err != nil {
		t.Fatal(err)
	}
	return env
}

func mustRestore(t *testing.T, env sim.Env, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := sim.Restore(io.Discard, env, n); err != nil {
			t.Fatalf("restore %s: %v", n, err)
		}
	}
}

func TestRestoreAndVerifyEveryComponent(t *testing.T) {
	env := mustHospital(t, nil)
	mustRestore(t, env, infra...)
	for _, a := range sim.Apps {
		mustRestore(t, env, a.ID)
	}
	for _, n := range infra {
		if err := sim.Verify(io.Discard, env, n); err != nil {
			t.Errorf("verify %s: %v", n, err)
		}
	}
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChecksCatchBadData restores a component whose backup holds wrong
// (but manifest-consistent) data: its own check must fail the step.
func TestChecksCatchBadData(t *testing.T) {
	tests := []struct {
		name, component string
		mutate          func(t *testing.T, seed string)
		want            string
	}{
		{"dns name missing", "dns", func(t *testing.T, s string) { edit(t, s+"/dns/chsf.local.zone", "lis\tCNAME\tlis-srv\n", "") }, "lis.chsf.local: no such name"},
		{"dns address outside subnets", "dns", func(t *testing.T, s string) { edit(t, s+"/dns/chsf.local.zone", "10.50.0.10", "192.168.1.1") }, "no known subnet"},
		{"unexpected domain admin", "ad", func(t *testing.T, s string) {
			edit(t, s+"/ad/users.csv", "Backup service,Services,true,Backup Operators", "Backup service,Services,true,Domain Admins")
		}, "not in the tier 0 list"},
		{"krbtgt not reset", "ad", func(t *testing.T, s string) {
			edit(t, s+"/ad/domain.conf", "krbtgt_reset_2=2022-09-03", "krbtgt_reset_2=2022-01-01")
		}, "reset twice"},
		{"user lost", "ad", func(t *testing.T, s string) { edit(t, s+"/ad/domain.conf", "expected_users=68", "expected_users=69") }, "68 users restored"},
		{"internet allowed", "firewall", func(t *testing.T, s string) {
			edit(t, s+"/firewall/rules.csv", "50,deny,any,internet", "50,allow,any,internet")
		}, "whole Internet"},
		{"overlapping subnets", "network-core", func(t *testing.T, s string) { edit(t, s+"/network-core/vlans.csv", "10.30.0.0/22", "10.20.0.0/22") }, "overlap"},
		{"external time source", "ntp", func(t *testing.T, s string) { edit(t, s+"/ntp/ntp.conf", "10.10.1.2", "162.159.200.1") }, "only internal time sources"},
		{"san over capacity", "san", func(t *testing.T, s string) { edit(t, s+"/san/array.conf", "capacity_gb=120000", "capacity_gb=1000") }, "the array has 1000"},
		{"old signatures", "edr", func(t *testing.T, s string) {
			edit(t, s+"/edr/policy.conf", "signatures_date=2022-09-05", "signatures_date=2022-08-01")
		}, "newer than the incident"},
		{"vpn user unknown", "remote-access", func(t *testing.T, s string) {
			edit(t, s+"/remote-access/vpn-users.txt", "adm-t0-durand", "someone-else")
		}, "no enabled AD account"},
		{"old EDR agent in the image", "workstations", func(t *testing.T, s string) {
			edit(t, s+"/workstations/packages.csv", "edr-agent,7.4.2", "edr-agent,6.0.0")
		}, "EDR agent package"},
		{"vm on missing host", "hypervisors", func(t *testing.T, s string) { edit(t, s+"/hypervisors/vms.csv", "dc1,hv1", "dc1,hv9") }, "unknown host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := mustHospital(t, func(s string) { tt.mutate(t, s) })
			for _, n := range infra {
				if n == tt.component {
					break
				}
				mustRestore(t, env, n)
			}
			_, err := sim.Restore(io.Discard, env, tt.component)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("restore %s: got %v, want an error mentioning %q", tt.component, err, tt.want)
			}
		})
	}
}

func TestTamperedBackupFailsRestore(t *testing.T) {
	env := mustHospital(t, nil)
	mustRestore(t, env, "backup-vault")
	// A byte changed in an archive: its hash no longer matches the catalog.
	arc := filepath.Join(env.Backups, "lis.tar.gz")
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = sim.Restore(io.Discard, env, "lis")
	if err == nil || !strings.Contains(err.Error(), "the catalog says") {
		t.Fatalf("got %v, want a catalog mismatch", err)
	}
	// The vault's check reports it, without failing the whole rebuild.
	var out strings.Builder
	if err := sim.Verify(&out, env, "backup-vault"); err != nil || !strings.Contains(out.String(), "DAMAGED") || !strings.Contains(out.String(), "lis.tar.gz") {
		t.Fatalf("vault verify: got %v, %q; want lis.tar.gz reported damaged", err, out.String())
	}
	// With every backup gone, the vault fails.
	arcs, _ := filepath.Glob(filepath.Join(env.Backups, "*.tar.gz"))
	for _, a := range arcs {
		if filepath.Base(a) != "backup-vault.tar.gz" {
			os.Remove(a)
		}
	}
	os.Remove(filepath.Join(env.Backups, "pacs-images.sha256"))
	if err := sim.Verify(io.Discard, env, "backup-vault"); err == nil || !strings.Contains(err.Error(), "no backup matches") {
		t.Fatalf("vault verify with no backups: got %v", err)
	}
}

func TestVerifyFailsOnTamperedRestoredData(t *testing.T) {
	env := mustHospital(t, nil)
	mustRestore(t, env, "backup-vault", "network-core", "dns")
	edit(t, filepath.Join(env.Data("dns"), "chsf.local.zone"), "10.50.0.10", "10.50.0.66")
	err := sim.Verify(io.Discard, env, "dns")
	if err == nil || !strings.Contains(err.Error(), "chsf.local.zone: sha256") {
		t.Fatalf("got %v, want the altered zone file named", err)
	}
}

func TestHealthEndpoint(t *testing.T) {
	env := mustHospital(t, nil)
	mustRestore(t, env, "backup-vault", "lis")
	lis, _ := sim.FindApp("lis")
	get := func() (int, sim.Health) {
		s := sim.NewService(env, lis)
		s.Load()
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h sim.Health
		json.NewDecoder(resp.Body).Decode(&h)
		return resp.StatusCode, h
	}
	if code, h := get(); code != 200 || !h.Verified || h.Tables["results"] != 150 {
		t.Fatalf("healthy lis: got %d %+v", code, h)
	}
	os.Remove(filepath.Join(env.Data("lis"), "tests.csv"))
	if code, h := get(); code != 503 || h.Verified || !strings.Contains(h.Error, "tests.csv: missing") {
		t.Fatalf("lis with a file missing: got %d %+v, want 503 naming tests.csv", code, h)
	}
}

// startServices runs apps in this process, on their real ports.
func startServices(t *testing.T, env sim.Env, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, len(ids))
	t.Cleanup(func() {
		cancel()
		for range ids {
			<-done
		}
	})
	for _, id := range ids {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := sim.Run(ctx, env, id); err != nil {
				t.Errorf("serve %s: %v", id, err)
			}
		}()
	}
	for _, id := range ids {
		app, _ := sim.FindApp(id)
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := sim.Probe(context.Background(), env, app)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healthy: %v", id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestHL7ThroughTheEAI(t *testing.T) {
	env := mustHospital(t, nil)
	env.PortBase = freePortBase(t)
	mustRestore(t, env, "backup-vault", "eai", "gam", "lis", "dpi")
	startServices(t, env, "eai", "gam", "lis", "dpi")
	ctx := context.Background()

	out, err := sim.HL7Check(ctx, io.Discard, env, "ADT^A01", "gam", "lis")
	if err != nil {
		t.Fatalf("ADT^A01 gam -> lis: %v", err)
	}
	if out["ack"] != "AA" || out["ins"] == "" {
		t.Fatalf("outputs %v", out)
	}
	if _, err := sim.HL7Check(ctx, io.Discard, env, "ORU^R01", "lis", "dpi"); err != nil {
		t.Fatalf("ORU^R01 lis -> dpi: %v", err)
	}

	eai, _ := sim.FindApp("eai")
	send := func(receiver, ins string) *hl7.Message {
		m := hl7.NewMessage("GAM", receiver, "ADT^A01", "TEST-"+receiver, time.Now())
		m.Add("PID", "1", "", ins+"^^^INS", "", "TEST^PATIENT")
		ack, err := hl7.Send(ctx, env.MLLPAddr(eai), m, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	tests := []struct {
		name, receiver, ins, code, text string
	}{
		{"valid INS", "LIS", "282129900100757", "AA", "filed by lis"},
		{"bad INS key", "LIS", "282129900100700", "AE", "key"},
		{"no route", "NOWHERE", "282129900100757", "AR", "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := send(tt.receiver, tt.ins)
			if ack.AckCode() != tt.code || !strings.Contains(ack.AckText(), tt.text) {
				t.Fatalf("ack %s %q, want %s mentioning %q", ack.AckCode(), ack.AckText(), tt.code, tt.text)
			}
		})
	}
	// An unreachable destination is an application error, not a hang.
	if _, err := sim.HL7Check(ctx, io.Discard, env, "ADT^A01", "gam", "pharmacy"); err == nil || !strings.Contains(err.Error(), "ACK AE") {
		t.Fatalf("to a stopped pharmacy: got %v, want ACK AE", err)
	}
}

func TestReentryAddsPaperRecordsOnce(t *testing.T) {
	env := mustHospital(t, nil)
	env.PortBase = freePortBase(t)
	mustRestore(t, env, "backup-vault", "gam", "lis")
	startServices(t, env, "gam", "lis")
	ctx := context.Background()
	if _, err := sim.Reentry(ctx, io.Discard, env, "admissions"); err != nil {
		t.Fatal(err)
	}
	out, err := sim.Reentry(ctx, io.Discard, env, "lab")
	if err != nil {
		t.Fatal(err)
	}
	again, err := sim.Reentry(ctx, io.Discard, env, "lab")
	if err != nil {
		t.Fatal(err)
	}
	if out["results"] != "190" || again["results"] != "190" {
		t.Fatalf("lis results after re-entry: %v then %v, want 190 (150 restored + 40 from paper) both times", out, again)
	}
}

func TestReentryRefusesUnknownPatient(t *testing.T) {
	env := mustHospital(t, func(seed string) {
		f, _ := os.OpenFile(filepath.Join(seed, "paper", "lab.csv"), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("RP9999,199999999999999,GLU,Glucose,5.1,mmol/L,3.9-5.8,yes\n")
		f.Close()
	})
	env.PortBase = freePortBase(t)
	mustRestore(t, env, "backup-vault", "gam", "lis")
	startServices(t, env, "gam", "lis")
	_, err := sim.Reentry(context.Background(), io.Discard, env, "lab")
	if err == nil || !strings.Contains(err.Error(), "unknown to the admissions") {
		t.Fatalf("got %v, want the unknown patient refused", err)
	}
}

func TestManifestOfBackupsIsComplete(t *testing.T) {
	env := mustHospital(t, nil)
	cat, err := archive.ReadManifest(filepath.Join(env.Backups, "backup-vault.tar.gz.sha256"))
	if err != nil || len(cat) != 1 {
		t.Fatalf("vault fingerprint: %v %v", cat, err)
	}
	mustRestore(t, env, "backup-vault")
	entries, err := archive.ReadManifest(filepath.Join(env.Data("backup-vault"), "catalog.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(infra) - 1 + len(sim.Apps) + 1; len(entries) != want { // + pacs-images.sha256
		t.Errorf("catalog lists %d backups, want %d", len(entries), want)
	}
}
