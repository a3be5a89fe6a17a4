package graphs

import "time"

// Plan is the summary `reprise plan` prints: the waves, each node's
// effective criticality, the critical path and the estimated duration. Its
// JSON form is documented in PLAN_JSON.md; fields are only ever added.
type Plan struct {
	File        string   `json:"file"`
	Name        string   `json:"name,omitempty"`
	Hash        string   `json:"hash"`
	Nodes       int      `json:"nodes"`
	Edges       int      `json:"edges"`
	Targets     []string `json:"targets,omitempty"`
	Parallelism int      `json:"parallelism"`
	// Waves lists node ids wave by wave, ids sorted in each wave.
	Waves               [][]string `json:"waves"`
	CriticalPath        []string   `json:"critical_path"`
	CriticalPathSeconds float64    `json:"critical_path_seconds"`
	EstimateSeconds     float64    `json:"estimate_seconds"`
	// Details has one entry per node, in plan order (wave by wave).
	Details []PlanNode `json:"details"`
	// Zones are the trust zones as stages, most trusted first, each with
	// its waves (the run's waves restricted to the zone's nodes); empty
	// when the graph declares no zones.
	Zones []PlanZone `json:"zones,omitempty"`
	// Reconnections are the interfaces between two zones, restored with
	// the less trusted one.
	Reconnections []Reconnection `json:"reconnections,omitempty"`

	// Estimate and CriticalDuration are the same figures as durations.
	Estimate         time.Duration `json:"-"`
	CriticalDuration time.Duration `json:"-"`
}

// PlanNode is one node of a Plan.
type PlanNode struct {
	ID                   string      `json:"id"`
	Kind                 Kind        `json:"kind"`
	Title                string      `json:"title,omitempty"`
	Plugin               string      `json:"plugin"`
	Wave                 int         `json:"wave"`
	Criticality          Criticality `json:"criticality"`
	EffectiveCriticality Criticality `json:"effective_criticality"`
	EstimateSeconds      float64     `json:"estimate_seconds"`
	RemainingSeconds     float64     `json:"remaining_seconds"`
	OnCriticalPath       bool        `json:"on_critical_path"`
	DependsOn            []string    `json:"depends_on"`
	Zone                 string      `json:"zone,omitempty"`

	// Estimate is EstimateSeconds as a duration.
	Estimate time.Duration `json:"-"`
}

// PlanZone is one trust zone of a Plan: a stage that starts once every
// more trusted zone is certified.
type PlanZone struct {
	ID    string     `json:"id"`
	Title string     `json:"title,omitempty"`
	Waves [][]string `json:"waves"`
}

// NewPlan analyses g (valid; already cut to its targets, if any: targets
// are only recorded) and estimates its duration at parallelism.
func NewPlan(g *Graph, targets []string, parallelism int) *Plan {
	a := Analyze(g)
	if parallelism < 1 {
		parallelism = 1
	}
	est := EstimateDuration(g, a, parallelism)
	p := &Plan{
		File: g.File, Name: g.Name, Hash: g.Hash(),
		Nodes: len(g.Nodes), Targets: targets, Parallelism: parallelism,
		Waves:               make([][]string, len(a.Waves)),
		CriticalPath:        make([]string, len(a.CriticalPath)),
		CriticalPathSeconds: a.CriticalDuration.Seconds(),
		EstimateSeconds:     est.Seconds(),
		Estimate:            est,
		CriticalDuration:    a.CriticalDuration,
		Details:             make([]PlanNode, 0, len(g.Nodes)),
	}
	onPath := make([]bool, len(g.Nodes))
	for i, v := range a.CriticalPath {
		p.CriticalPath[i] = g.Nodes[v].ID
		onPath[v] = true
	}
	for k, wave := range a.Waves {
		ids := make([]string, len(wave))
		for i, v := range wave {
			n := g.Nodes[v]
			ids[i] = n.ID
			deps := make([]string, len(a.Deps[v]))
			for j, d := range a.Deps[v] {
				deps[j] = g.Nodes[d].ID
			}
			p.Edges += len(deps)
			crit := n.Criticality
			if crit == "" {
				crit = CriticalityNormal
			}
			p.Details = append(p.Details, PlanNode{
				ID: n.ID, Kind: n.Kind, Title: n.Title, Plugin: n.Plugin, Wave: k,
				Criticality: crit, EffectiveCriticality: a.Effective[v],
				EstimateSeconds:  n.Estimate.Seconds(),
				Estimate:         n.Estimate,
				RemainingSeconds: a.Remaining[v].Seconds(),
				OnCriticalPath:   onPath[v],
				DependsOn:        deps,
				Zone:             n.Zone,
			})
		}
		p.Waves[k] = ids
	}
	p.addZones(g)
	return p
}

// addZones groups each wave's nodes by zone.
func (p *Plan) addZones(g *Graph) {
	if len(g.Zones) == 0 {
		return
	}
	p.Zones = make([]PlanZone, len(g.Zones))
	for k, z := range g.Zones {
		p.Zones[k] = PlanZone{ID: z.ID, Title: z.Title, Waves: [][]string{}}
	}
	lastWave := make([]int, len(g.Zones))
	for k := range lastWave {
		lastWave[k] = -1
	}
	for _, d := range p.Details {
		k := g.ZoneRank(d.Zone)
		if k < 0 {
			continue
		}
		z := &p.Zones[k]
		if lastWave[k] != d.Wave {
			z.Waves = append(z.Waves, nil)
			lastWave[k] = d.Wave
		}
		z.Waves[len(z.Waves)-1] = append(z.Waves[len(z.Waves)-1], d.ID)
	}
	p.Reconnections = g.Reconnections()
}
