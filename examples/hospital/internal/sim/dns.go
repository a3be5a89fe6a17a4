package sim

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Zone is a restored DNS zone (A and CNAME records only), with a resolver
// that follows CNAME chains the way a recursive resolver would.
type Zone struct {
	origin  string
	records map[string]zoneRecord
}

type zoneRecord struct {
	typ, value string
}

// LoadZone parses a zone file of `name TYPE value` lines with an $ORIGIN.
func LoadZone(path string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z := &Zone{records: map[string]zoneRecord{}}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(text, ';'); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			continue
		}
		fields := strings.Fields(text)
		if fields[0] == "$ORIGIN" && len(fields) == 2 {
			z.origin = strings.TrimSuffix(fields[1], ".")
			continue
		}
		if len(fields) != 3 || (fields[1] != "A" && fields[1] != "CNAME") {
			return nil, fmt.Errorf("%s:%d: want `name A address` or `name CNAME target`, got %q", path, line, text)
		}
		if fields[1] == "A" {
			if _, err := netip.ParseAddr(fields[2]); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		if _, dup := z.records[fields[0]]; dup {
			return nil, fmt.Errorf("%s:%d: name %q defined twice", path, line, fields[0])
		}
		z.records[fields[0]] = zoneRecord{fields[1], fields[2]}
	}
	if z.origin == "" {
		return nil, fmt.Errorf("%s: no $ORIGIN", path)
	}
	return z, sc.Err()
}

// Resolve returns the address of name (relative, or absolute within the
// zone's origin), following at most 8 CNAMEs.
func (z *Zone) Resolve(name string) (string, error) {
	n := strings.TrimSuffix(strings.TrimSuffix(name, "."), "."+z.origin)
	for hops := 0; hops < 8; hops++ {
		r, ok := z.records[n]
		if !ok {
			return "", fmt.Errorf("dns: %s.%s: no such name", n, z.origin)
		}
		if r.typ == "A" {
			return r.value, nil
		}
		n = strings.TrimSuffix(strings.TrimSuffix(r.value, "."), "."+z.origin)
	}
	return "", fmt.Errorf("dns: %s: CNAME chain too long or looping", name)
}
