package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/reprise-si/reprise/graphs"
)

// PluginReport is what Inspect finds of one plugin a graph uses (the JSON
// of `reprise plugins --json`).
type PluginReport struct {
	Name     string   `json:"name"`
	Builtin  bool     `json:"builtin"`
	Path     string   `json:"path,omitempty"` // as declared in the graph
	Resolved string   `json:"resolved"`       // absolute path of the binary
	Nodes    []string `json:"nodes"`          // ids of the nodes it serves
	SHA256   string   `json:"sha256,omitempty"`
	// Checksum is "built in", "not pinned", "matches", "differs" or
	// "unreadable".
	Checksum string       `json:"checksum"`
	Actual   string       `json:"actual_sha256,omitempty"`
	Describe *Description `json:"describe,omitempty"`
	// Problems are what the plugin's Validate says of its nodes' configs
	// ("node \"ID\": problem"; placeholders are not resolved).
	Problems []string `json:"problems"`
	// Error is why the plugin could not be started or described.
	Error string `json:"error,omitempty"`
}

// Description is what a plugin's Describe said.
type Description struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Description string   `json:"description,omitempty"`
	Kinds       []string `json:"kinds"` // empty: every kind
	Fields      []Field  `json:"fields"`
	// ListsRestorePoints: the plugin implements ListRestorePoints (a node
	// may say `restore_points: {from: plugin}`).
	ListsRestorePoints bool `json:"lists_restore_points"`
}

// Field is one field of a plugin's `with` configuration.
type Field struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required"`
	Description string `json:"description,omitempty"`
}

// InspectOptions tune Inspect. The zero value describes and validates,
// giving each plugin 20 seconds.
type InspectOptions struct {
	// Timeout bounds each plugin's start and Describe (0: 20s).
	Timeout time.Duration
	// NoValidate skips asking the plugins to validate their nodes' configs.
	NoValidate bool
	// Host is the plugin host's options; Inspect sets Plugins, GraphDir and
	// StartTimeout from the graph and Timeout.
	Host Options
}

// Inspect reports on every plugin g uses, in name order: where its binary
// is and whether it matches its pinned sha256, what its Describe says, and
// what its Validate says of its nodes. Each plugin is started once, in a
// host of its own that Inspect closes. A plugin that cannot be started or
// described has Error set; Inspect itself does not fail.
func Inspect(ctx context.Context, g *graphs.Graph, opts InspectOptions) []PluginReport {
	if opts.Timeout <= 0 {
		opts.Timeout = 20 * time.Second
	}
	byName := map[string]*PluginReport{}
	for name, ref := range g.Plugins {
		byName[name] = &PluginReport{Name: name, Path: ref.Path, SHA256: ref.SHA256, Nodes: []string{}, Problems: []string{}}
	}
	for _, n := range g.Nodes {
		r := byName[n.Plugin]
		if r == nil {
			r = &PluginReport{Name: n.Plugin, Builtin: true, Nodes: []string{}, Problems: []string{}}
			byName[n.Plugin] = r
		}
		r.Nodes = append(r.Nodes, n.ID)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)

	ho := opts.Host
	ho.Plugins, ho.GraphDir, ho.StartTimeout = g.Plugins, g.Dir, opts.Timeout
	h := New(ho)
	defer h.Close()
	for _, name := range names {
		r := byName[name]
		inspectBinary(r, g)
		cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		info, err := h.Describe(cctx, name)
		cancel()
		if err != nil {
			r.Error = err.Error()
			var pe *PluginError
			if errors.As(err, &pe) && pe.Path != "" && r.Resolved == "" {
				r.Resolved = pe.Path
			}
			continue
		}
		d := &Description{Name: info.Name, Version: info.Version, Description: info.Description,
			Kinds: []string{}, Fields: []Field{}, ListsRestorePoints: info.ListsRestorePoints}
		for _, k := range info.Kinds {
			d.Kinds = append(d.Kinds, string(k))
		}
		for _, f := range info.Fields {
			d.Fields = append(d.Fields, Field(f))
		}
		r.Describe = d
	}
	if !opts.NoValidate {
		for _, p := range ValidateNodes(ctx, h, usable(g, byName)) {
			r := byName[p.Plugin]
			r.Problems = append(r.Problems, fmt.Sprintf("node %q: %s", p.NodeID, p.Message))
		}
	}
	out := make([]PluginReport, 0, len(names))
	for _, name := range names {
		out = append(out, *byName[name])
	}
	return out
}

// usable returns g with only the nodes whose plugin answered Describe (the
// others already carry their plugin's error).
func usable(g *graphs.Graph, byName map[string]*PluginReport) *graphs.Graph {
	sub := *g
	sub.Nodes = nil
	for _, n := range g.Nodes {
		if byName[n.Plugin].Error == "" {
			sub.Nodes = append(sub.Nodes, n)
		}
	}
	return &sub
}

// inspectBinary fills where r's binary is and whether it matches its pin.
func inspectBinary(r *PluginReport, g *graphs.Graph) {
	if r.Builtin {
		if exe, err := os.Executable(); err == nil {
			r.Resolved = exe
		}
		r.Checksum = "built in"
		return
	}
	r.Resolved = ResolvePath(g.Dir, g.Plugins[r.Name])
	actual, err := FileSHA256(r.Resolved)
	switch {
	case err != nil:
		r.Checksum = "unreadable"
	case r.SHA256 == "":
		r.Checksum, r.Actual = "not pinned", actual
	case strings.EqualFold(r.SHA256, actual):
		r.Checksum = "matches"
	default:
		r.Checksum, r.Actual = "differs", actual
	}
}
