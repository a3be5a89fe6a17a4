package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/examples/hospital/internal/archive"
)

func checkEDR(env Env) (string, error) {
	p, err := conf(env, "edr", "policy.conf")
	if err != nil {
		return "", err
	}
	inc, err1 := time.Parse(time.DateOnly, p["incident"])
	sig, err2 := time.Parse(time.DateOnly, p["signatures_date"])
	if err1 != nil || err2 != nil || !sig.After(inc) {
		return "", fmt.Errorf("edr: signatures of %q must be newer than the incident (%q)", p["signatures_date"], p["incident"])
	}
	if p["mode"] != "block" {
		return "", fmt.Errorf("edr: mode %q, want block", p["mode"])
	}
	a, err := table(env, "edr", "agents.csv")
	if err != nil {
		return "", err
	}
	for h, r := range a.Rows {
		if r["status"] != "healthy" {
			return "", fmt.Errorf("edr agent on %s: %s", h, r["status"])
		}
	}
	return fmt.Sprintf("%d agents healthy, signatures of %s", len(a.Rows), p["signatures_date"]), nil
}

func checkHypervisors(env Env) (string, error) {
	hosts, err := table(env, "hypervisors", "hosts.csv")
	if err != nil {
		return "", err
	}
	vms, err := table(env, "hypervisors", "vms.csv")
	if err != nil {
		return "", err
	}
	cpu, ram := map[string]int{}, map[string]int{}
	for _, v := range vms.Sorted() {
		h, ok := hosts.Rows[v["host"]]
		if !ok {
			return "", fmt.Errorf("vm %s: on unknown host %q", v["vm"], v["host"])
		}
		c, _ := strconv.Atoi(v["cpu"])
		r, _ := strconv.Atoi(v["ram_gb"])
		cpu[v["host"]] += c
		ram[v["host"]] += r
		hc, _ := strconv.Atoi(h["cpu"])
		hr, _ := strconv.Atoi(h["ram_gb"])
		if cpu[v["host"]] > hc || ram[v["host"]] > hr {
			return "", fmt.Errorf("host %s: over capacity with vm %s", v["host"], v["vm"])
		}
	}
	return fmt.Sprintf("%d VMs on %d hosts within capacity", len(vms.Rows), len(hosts.Rows)), nil
}

func checkSAN(env Env) (string, error) {
	c, err := conf(env, "san", "array.conf")
	if err != nil {
		return "", err
	}
	capacity, err := strconv.Atoi(c["capacity_gb"])
	if err != nil {
		return "", fmt.Errorf("san array.conf: capacity_gb %q", c["capacity_gb"])
	}
	luns, err := table(env, "san", "luns.csv")
	if err != nil {
		return "", err
	}
	used := 0
	for _, l := range luns.Rows {
		n, err := strconv.Atoi(l["size_gb"])
		if err != nil || n <= 0 {
			return "", fmt.Errorf("lun %s: size %q", l["lun"], l["size_gb"])
		}
		used += n
	}
	if used > capacity {
		return "", fmt.Errorf("san: LUNs use %d GB, the array has %d", used, capacity)
	}
	return fmt.Sprintf("%d LUNs, %d of %d GB", len(luns.Rows), used, capacity), nil
}

func checkDBCluster(env Env) (string, error) {
	inst, err := table(env, "db-cluster", "instances.csv")
	if err != nil {
		return "", err
	}
	vms, err := table(env, "hypervisors", "vms.csv")
	if err != nil {
		return "", err
	}
	have := map[string]bool{}
	for _, r := range inst.Rows {
		if _, ok := vms.Rows[r["vm"]]; !ok {
			return "", fmt.Errorf("database %s: on unknown vm %q", r["instance"], r["vm"])
		}
		have[r["app"]] = true
	}
	for _, a := range Apps {
		if !have[a.ID] {
			return "", fmt.Errorf("no database instance for application %s", a.ID)
		}
	}
	return fmt.Sprintf("%d database instances, one per application", len(inst.Rows)), nil
}

func checkPrinters(env Env) (string, error) {
	p, err := table(env, "printers", "printers.csv")
	if err != nil {
		return "", err
	}
	nets, err := subnets(env)
	if err != nil {
		return "", err
	}
	labels := 0
	for _, r := range p.Rows {
		if z, err := inSubnets(nets, r["ip"]); err != nil || z != "printers" {
			return "", fmt.Errorf("printer %s: %s is not in the printers VLAN", r["printer"], r["ip"])
		}
		if r["type"] == "tube-labels" {
			labels++
		}
	}
	if labels == 0 {
		return "", fmt.Errorf("printers: no tube-label printer for the lab")
	}
	return fmt.Sprintf("%d printers, %d tube-label printers", len(p.Rows), labels), nil
}

func adUsers(env Env) (*Table, error) {
	u, err := table(env, "ad", "users.csv")
	if err != nil {
		return nil, fmt.Errorf("ad (restore it first): %w", err)
	}
	return u, nil
}

func checkMessaging(env Env) (string, error) {
	m, err := table(env, "messaging", "mailboxes.csv")
	if err != nil {
		return "", err
	}
	u, err := adUsers(env)
	if err != nil {
		return "", err
	}
	for _, r := range m.Rows {
		if _, ok := u.Rows[r["owner"]]; !ok {
			return "", fmt.Errorf("mailbox %s: owner %q has no AD account", r["mailbox"], r["owner"])
		}
	}
	return fmt.Sprintf("%d mailboxes, every owner in the AD", len(m.Rows)), nil
}

func checkRemoteAccess(env Env) (string, error) {
	b, err := os.ReadFile(filepath.Join(env.Data("remote-access"), "vpn-users.txt"))
	if err != nil {
		return "", err
	}
	u, err := adUsers(env)
	if err != nil {
		return "", err
	}
	n := 0
	for _, sam := range strings.Fields(string(b)) {
		r, ok := u.Rows[sam]
		if !ok || r["enabled"] != "true" {
			return "", fmt.Errorf("vpn user %s: no enabled AD account", sam)
		}
		n++
	}
	return fmt.Sprintf("%d VPN users, all enabled in the AD", n), nil
}

// checkVault compares the restored backup catalog with the backup folder.
// A damaged or missing backup is reported here, early, but fails only the
// restore of its own component (the rest of the hospital can be rebuilt);
// the vault itself fails when its catalog is empty or no backup matches.
func checkVault(env Env) (string, error) {
	cat, err := archive.ReadManifest(filepath.Join(env.Data("backup-vault"), "catalog.sha256"))
	if err != nil {
		return "", err
	}
	if len(cat) == 0 {
		return "", fmt.Errorf("backup catalog is empty")
	}
	var damaged []string
	for _, e := range cat {
		got, err := archive.HashFile(filepath.Join(env.Backups, filepath.FromSlash(e.Path)))
		switch {
		case err != nil:
			damaged = append(damaged, fmt.Sprintf("%s (%v)", e.Path, err))
		case got != e.SHA256:
			damaged = append(damaged, fmt.Sprintf("%s (sha256 %s, the catalog says %s)", e.Path, got, e.SHA256))
		}
	}
	if len(damaged) == len(cat) {
		return "", fmt.Errorf("no backup matches the catalog: %s", strings.Join(damaged, "; "))
	}
	if len(damaged) > 0 {
		return fmt.Sprintf("%d of %d backups match the catalog; DAMAGED, their restores will fail: %s",
			len(cat)-len(damaged), len(cat), strings.Join(damaged, "; ")), nil
	}
	return fmt.Sprintf("%d backups match the catalog", len(cat)), nil
}

// checkWorkstations checks the golden image against the EDR policy: the
// agent in the image must be the version deployed on the servers.
func checkWorkstations(env Env) (string, error) {
	img, err := conf(env, "workstations", "image.conf")
	if err != nil {
		return "", err
	}
	pkgs, err := table(env, "workstations", "packages.csv")
	if err != nil {
		return "", err
	}
	agents, err := table(env, "edr", "agents.csv")
	if err != nil {
		return "", fmt.Errorf("edr (restore it first): %w", err)
	}
	if p, ok := pkgs.Rows["edr-agent"]; !ok || p["version"] != img["edr_agent"] {
		return "", fmt.Errorf("workstation image %s: EDR agent package %q, image.conf says %q", img["image"], p["version"], img["edr_agent"])
	}
	for host, a := range agents.Rows {
		if a["version"] != img["edr_agent"] {
			return "", fmt.Errorf("workstation image %s carries EDR agent %s, %s runs %s", img["image"], img["edr_agent"], host, a["version"])
		}
	}
	return fmt.Sprintf("image %s: %d packages, EDR agent %s as on the servers", img["image"], len(pkgs.Rows), img["edr_agent"]), nil
}

// checkIdentity checks the identity server's INS: valid keys, known status.
func checkIdentity(env Env) (string, error) {
	t, err := table(env, "identity", "ins.csv")
	if err != nil {
		return "", err
	}
	qualified := 0
	for ins, r := range t.Rows {
		if err := CheckINS(ins); err != nil {
			return "", fmt.Errorf("identity: %w", err)
		}
		switch r["status"] {
		case "qualified":
			qualified++
		case "provisional":
		default:
			return "", fmt.Errorf("identity: INS %s has status %q (want qualified or provisional)", ins, r["status"])
		}
	}
	return fmt.Sprintf("%d INS with valid keys, %d qualified", len(t.Rows), qualified), nil
}
