package graphs

import "time"

// Zone is a trust zone: nodes of a zone start only once every more trusted
// zone is certified clean.
type Zone struct {
	ID    string
	Title string
	Pos   Position
}

// Scanner declares a restore-point scanner (see package engine/scan for
// what each type does). Relative paths resolve from the graph's folder.
type Scanner struct {
	Name string
	Type string // ioc, entropy, yara, clamav
	// HashLists and Names: ioc. Threshold and MinEntropy: entropy (zero:
	// the scanner's defaults). Rules: yara. Database: clamav.
	HashLists  []string
	Names      []string
	Threshold  float64
	MinEntropy float64
	Rules      []string
	Database   string
	Pos        Position
}

// ScannerTypes lists the scanner types a graph may declare.
var ScannerTypes = []string{"ioc", "entropy", "yara", "clamav"}

// Incident says when the attack was detected.
type Incident struct {
	// Detected: restore points taken after it are never chosen without an
	// operator's override, and the data lost per node (the RPO achieved)
	// is counted back from it.
	Detected time.Time
	// RequireEvidence: every machine a node wipes must be preserved by an
	// evidence node first.
	RequireEvidence bool
	Pos             Position
}

// RestorePoints are where a node's data may come from.
type RestorePoints struct {
	// FromPlugin: the node's plugin lists them (ListRestorePoints).
	FromPlugin bool
	// Roots are the folders a plugin's points must lie under (FromPlugin
	// only); relative ones resolve from the graph's folder.
	Roots []string
	// Points is the static list, in file order (the engine sorts them
	// newest first).
	Points []RestorePoint
	Pos    Position
}

// RestorePoint is one backup of a node's data.
type RestorePoint struct {
	ID   string
	Time time.Time
	Path string // a folder; relative paths resolve from the graph's folder
	Pos  Position
}

// ZoneRank returns the position of zone id in Zones (0: most trusted), or
// -1 when unknown.
func (g *Graph) ZoneRank(id string) int {
	for i, z := range g.Zones {
		if z.ID == id {
			return i
		}
	}
	return -1
}

// Scanner returns the scanner declared under name.
func (g *Graph) Scanner(name string) (Scanner, bool) {
	for _, s := range g.Scanners {
		if s.Name == name {
			return s, true
		}
	}
	return Scanner{}, false
}

// Reconnection is an interface whose two ends lie in different zones: it
// belongs to the less trusted zone (To), and restoring it reconnects that
// zone to a more trusted one (From).
type Reconnection struct {
	Interface string    `json:"interface"`
	From      string    `json:"from"` // the more trusted zone
	To        string    `json:"to"`   // the less trusted zone, the interface's own
	Ends      [2]string `json:"ends"`
}

// Reconnections returns every cross-zone interface, in node order.
func (g *Graph) Reconnections() []Reconnection {
	if len(g.Zones) == 0 {
		return nil
	}
	var out []Reconnection
	for _, n := range g.Nodes {
		if n.Kind != KindInterface || len(n.Between) != 2 {
			continue
		}
		a, okA := g.Node(n.Between[0])
		b, okB := g.Node(n.Between[1])
		if !okA || !okB || a.Zone == b.Zone {
			continue
		}
		from, to := a.Zone, b.Zone
		if g.ZoneRank(from) > g.ZoneRank(to) {
			from, to = to, from
		}
		out = append(out, Reconnection{Interface: n.ID, From: from, To: to, Ends: [2]string{a.ID, b.ID}})
	}
	return out
}
