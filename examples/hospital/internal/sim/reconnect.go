package sim

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/reprise-si/reprise/examples/hospital/internal/archive"
)

// openRulesFile is the firewall rule set once the outside is reconnected.
func openRulesFile(env Env) string { return filepath.Join(env.Work, "state", "firewall-open.csv") }

// Reconnect opens the outside world last. It refuses while any application
// is unhealthy or any restored folder fails its manifest; then it writes the
// firewall rule set with one allow rule per partner (never the whole
// Internet) before the containment denies, and checks it. With checkOnly it
// changes nothing and says whether that state is already in place.
func Reconnect(ctx context.Context, w io.Writer, env Env, checkOnly bool) (Outputs, error) {
	var problems []error
	for _, a := range Apps {
		if _, err := ProbeCurrent(ctx, env, a); err != nil {
			problems = append(problems, fmt.Errorf("application %s: %w", a.ID, err))
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(env.Work, "data", "*"))
	verified := 0
	for _, d := range dirs {
		if filepath.Base(d) == "pacs-images" {
			entries, err := archive.ReadManifest(filepath.Join(env.Backups, "pacs-images.sha256"))
			if err == nil {
				_, err = archive.VerifyDirSkipping(d, entries, vendorTemp)
			}
			if err != nil {
				problems = append(problems, err)
			}
		} else if _, err := archive.VerifyRestored(d); err != nil {
			problems = append(problems, err)
		}
		verified++
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("refusing to reconnect the outside world: %w", err)
	}
	rules, err := openRules(env)
	if err != nil {
		return nil, err
	}
	path := openRulesFile(env)
	if checkOnly {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, rules) {
			return nil, fmt.Errorf("outside not reconnected yet (%s missing or different)", path)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, rules, 0o644); err != nil {
			return nil, err
		}
	}
	t, err := ReadCSV("rules", path)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "reconnection: %d applications healthy, %d restored folders verified; %d firewall rules in %s, partners only\n", len(Apps), verified, len(t.Rows), path)
	return Outputs{"rules": fmt.Sprint(len(t.Rows))}, nil
}

// openRules builds and checks the reconnected rule set.
func openRules(env Env) ([]byte, error) {
	rules, err := table(env, "firewall", "rules.csv")
	if err != nil {
		return nil, err
	}
	partners, err := table(env, "firewall", "partners.csv")
	if err != nil {
		return nil, err
	}
	nets, err := subnets(env)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	out := rules.Sorted()
	for i, p := range partners.Sorted() {
		pfx, err := netip.ParsePrefix(p["cidr"])
		if err != nil || !pfx.Addr().IsGlobalUnicast() || pfx.Bits() < 16 {
			return nil, fmt.Errorf("partner %s: cidr %q: want a public network of /16 or narrower", p["partner"], p["cidr"])
		}
		for n, q := range nets {
			if q.Overlaps(pfx) {
				return nil, fmt.Errorf("partner %s: %s overlaps internal vlan %s", p["partner"], pfx, n)
			}
		}
		names[p["partner"]] = true
		out = append(out, Row{"seq": strconv.Itoa(45 + i%5), "action": "allow", "src": "servers", "dst": p["partner"], "port": p["port"], "comment": "reconnection: " + p["purpose"]})
	}
	if err := checkRules(out, nets, names); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write([]string{"seq", "action", "src", "dst", "port", "comment"})
	for _, r := range out {
		cw.Write([]string{r["seq"] + "." + r["dst"], r["action"], r["src"], r["dst"], r["port"], r["comment"]})
	}
	cw.Flush()
	return b.Bytes(), cw.Error()
}
