package sim

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Check inspects one restored component beyond its manifest and says what
// it found; an error says what is wrong.
type Check func(env Env) (string, error)

// checks holds the component-specific checks; components without one get
// checkTables (every CSV parses, none empty except where allowed).
var checks = map[string]Check{
	"backup-vault":  checkVault,
	"network-core":  checkNetwork,
	"firewall":      checkFirewall,
	"dns":           checkDNS,
	"dhcp":          checkDHCP,
	"ntp":           checkNTP,
	"ad":            checkAD,
	"ad-gpo":        checkGPO,
	"pki":           checkPKI,
	"edr":           checkEDR,
	"hypervisors":   checkHypervisors,
	"san":           checkSAN,
	"db-cluster":    checkDBCluster,
	"printers":      checkPrinters,
	"messaging":     checkMessaging,
	"remote-access": checkRemoteAccess,
	"workstations":  checkWorkstations,
	"identity":      checkIdentity,
}

func table(env Env, comp, file string) (*Table, error) {
	return ReadCSV(strings.TrimSuffix(file, ".csv"), filepath.Join(env.Data(comp), file))
}

func conf(env Env, comp, file string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(env.Data(comp), file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s/%s: line %q: want key=value", comp, file, line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}

// checkTables loads every CSV of a component.
func checkTables(comp string) Check {
	return func(env Env) (string, error) {
		files, _ := filepath.Glob(filepath.Join(env.Data(comp), "*.csv"))
		rows := 0
		for _, f := range files {
			t, err := ReadCSV(filepath.Base(f), f)
			if err != nil {
				return "", err
			}
			rows += len(t.Rows)
		}
		return fmt.Sprintf("%d tables, %d rows", len(files), rows), nil
	}
}

// subnets returns the restored VLAN subnets, by VLAN name.
func subnets(env Env) (map[string]netip.Prefix, error) {
	t, err := table(env, "network-core", "vlans.csv")
	if err != nil {
		return nil, fmt.Errorf("network-core (restore it first): %w", err)
	}
	out := map[string]netip.Prefix{}
	for _, r := range t.Sorted() {
		p, err := netip.ParsePrefix(r["subnet"])
		if err != nil || p.Masked() != p {
			return nil, fmt.Errorf("vlan %s: subnet %q: want a network address with a prefix length", r["vlan"], r["subnet"])
		}
		out[r["name"]] = p
	}
	return out, nil
}

func inSubnets(nets map[string]netip.Prefix, ip string) (string, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", ip, err)
	}
	for name, p := range nets {
		if p.Contains(a) {
			return name, nil
		}
	}
	return "", fmt.Errorf("address %s is in no known subnet", ip)
}

func checkNetwork(env Env) (string, error) {
	nets, err := subnets(env)
	if err != nil {
		return "", err
	}
	list := make([]netip.Prefix, 0, len(nets))
	names := make([]string, 0, len(nets))
	for n, p := range nets {
		for i, q := range list {
			if p.Overlaps(q) {
				return "", fmt.Errorf("subnets of vlans %s (%s) and %s (%s) overlap", n, p, names[i], q)
			}
		}
		list, names = append(list, p), append(names, n)
	}
	return fmt.Sprintf("%d VLANs, no overlapping subnet", len(nets)), nil
}

func checkFirewall(env Env) (string, error) {
	t, err := table(env, "firewall", "rules.csv")
	if err != nil {
		return "", err
	}
	nets, err := subnets(env)
	if err != nil {
		return "", err
	}
	rules := t.Sorted()
	if err := checkRules(rules, nets, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d rules, default deny, no outbound flow to the Internet", len(rules)), nil
}

// checkRules checks a rule set in sequence order: known zones, a default
// deny last, and no allowed flow to the Internet other than the partners'.
func checkRules(rules []Row, nets map[string]netip.Prefix, partners map[string]bool) error {
	seqs := make([]int, len(rules))
	for i, r := range rules {
		n, err := strconv.Atoi(r["seq"])
		if err != nil {
			return fmt.Errorf("rule %q: seq is not a number", r["seq"])
		}
		seqs[i] = n
	}
	last := -1
	for i := range rules {
		if last == -1 || seqs[i] > seqs[last] {
			last = i
		}
	}
	if last < 0 || rules[last]["action"] != "deny" || rules[last]["src"] != "any" || rules[last]["dst"] != "any" {
		return fmt.Errorf("the last rule must be `deny any any` (default deny)")
	}
	for _, r := range rules {
		for _, zone := range []string{r["src"], r["dst"]} {
			if _, ok := nets[zone]; !ok && zone != "any" && zone != "internet" && !partners[zone] {
				return fmt.Errorf("rule %s: unknown zone %q", r["seq"], zone)
			}
		}
		if r["action"] != "allow" && r["action"] != "deny" {
			return fmt.Errorf("rule %s: action %q (want allow or deny)", r["seq"], r["action"])
		}
		if r["action"] == "allow" && (r["dst"] == "internet" || r["src"] == "internet") {
			return fmt.Errorf("rule %s allows a flow with the whole Internet: only named partners may be opened", r["seq"])
		}
	}
	return nil
}

func checkDNS(env Env) (string, error) {
	z, err := LoadZone(filepath.Join(env.Data("dns"), "chsf.local.zone"))
	if err != nil {
		return "", err
	}
	nets, err := subnets(env)
	if err != nil {
		return "", err
	}
	names := []string{"dc1", "dc2", "pki", "ntp1", "ntp2"}
	for _, a := range Apps {
		names = append(names, a.ID)
	}
	for _, n := range names {
		ip, err := z.Resolve(n)
		if err != nil {
			return "", err
		}
		if _, err := inSubnets(nets, ip); err != nil {
			return "", fmt.Errorf("dns %s -> %s: %w", n, ip, err)
		}
	}
	return fmt.Sprintf("%d records, %d required names resolve inside known subnets", len(z.records), len(names)), nil
}

func checkDHCP(env Env) (string, error) {
	t, err := table(env, "dhcp", "scopes.csv")
	if err != nil {
		return "", err
	}
	v, err := table(env, "network-core", "vlans.csv")
	if err != nil {
		return "", err
	}
	for _, s := range t.Sorted() {
		vl, ok := v.Rows[s["vlan"]]
		if !ok {
			return "", fmt.Errorf("dhcp scope on vlan %s: no such vlan", s["vlan"])
		}
		p, _ := netip.ParsePrefix(vl["subnet"])
		a, err1 := netip.ParseAddr(s["start"])
		b, err2 := netip.ParseAddr(s["end"])
		if err1 != nil || err2 != nil || !p.Contains(a) || !p.Contains(b) || b.Less(a) {
			return "", fmt.Errorf("dhcp scope on vlan %s: %s-%s not an ordered range inside %s", s["vlan"], s["start"], s["end"], p)
		}
	}
	return fmt.Sprintf("%d scopes inside their VLANs", len(t.Rows)), nil
}

func checkNTP(env Env) (string, error) {
	b, err := os.ReadFile(filepath.Join(env.Data("ntp"), "ntp.conf"))
	if err != nil {
		return "", err
	}
	nets, err := subnets(env)
	if err != nil {
		return "", err
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "server" {
			if _, err := inSubnets(nets, f[1]); err != nil {
				return "", fmt.Errorf("ntp server %s: only internal time sources while isolated: %w", f[1], err)
			}
			n++
		}
	}
	if n < 2 {
		return "", fmt.Errorf("ntp: %d internal servers, want at least 2", n)
	}
	return fmt.Sprintf("%d internal time servers", n), nil
}

func checkAD(env Env) (string, error) {
	users, err := table(env, "ad", "users.csv")
	if err != nil {
		return "", err
	}
	dom, err := conf(env, "ad", "domain.conf")
	if err != nil {
		return "", err
	}
	if want, _ := strconv.Atoi(dom["expected_users"]); want != len(users.Rows) {
		return "", fmt.Errorf("ad: %d users restored, the domain had %s", len(users.Rows), dom["expected_users"])
	}
	incident, err := time.Parse(time.DateOnly, dom["incident"])
	if err != nil {
		return "", fmt.Errorf("ad domain.conf: incident %q: %w", dom["incident"], err)
	}
	for _, k := range []string{"krbtgt_reset_1", "krbtgt_reset_2"} {
		d, err := time.Parse(time.DateOnly, dom[k])
		if err != nil || !d.After(incident) {
			return "", fmt.Errorf("ad: %s %q: the krbtgt password must be reset twice after the incident (%s)", k, dom[k], dom["incident"])
		}
	}
	t0, err := os.ReadFile(filepath.Join(env.Data("ad"), "tier0.txt"))
	if err != nil {
		return "", err
	}
	allowed := map[string]bool{}
	for _, l := range strings.Fields(string(t0)) {
		allowed[l] = true
	}
	admins := 0
	for sam, u := range users.Rows {
		if strings.Contains(u["groups"], "Domain Admins") {
			if !allowed[sam] {
				return "", fmt.Errorf("ad: %s is a Domain Admin but not in the tier 0 list", sam)
			}
			admins++
		}
	}
	return fmt.Sprintf("%d users, %d tier 0 admins, krbtgt reset twice", len(users.Rows), admins), nil
}

func checkGPO(env Env) (string, error) {
	g, err := table(env, "ad-gpo", "gpos.csv")
	if err != nil {
		return "", err
	}
	users, err := table(env, "ad", "users.csv")
	if err != nil {
		return "", err
	}
	ous := map[string]bool{}
	for _, u := range users.Rows {
		ous[u["ou"]] = true
	}
	for _, p := range g.Sorted() {
		if !ous[p["ou"]] {
			return "", fmt.Errorf("gpo %s: linked to OU %q, which the restored AD does not have", p["gpo"], p["ou"])
		}
	}
	return fmt.Sprintf("%d GPOs linked to existing OUs", len(g.Rows)), nil
}
