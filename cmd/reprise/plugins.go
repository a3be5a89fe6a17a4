package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/graphs"
)

func init() { register("plugins", newPluginsCmd) }

// pluginReport is what `reprise plugins` says of one plugin (--json).
type pluginReport struct {
	Name     string   `json:"name"`
	Builtin  bool     `json:"builtin"`
	Path     string   `json:"path,omitempty"` // as declared in the graph
	Resolved string   `json:"resolved"`       // absolute path of the binary
	Nodes    []string `json:"nodes"`          // ids of the nodes it serves
	SHA256   string   `json:"sha256,omitempty"`
	// Checksum is "not pinned", "matches", "differs" or "unreadable".
	Checksum string       `json:"checksum"`
	Actual   string       `json:"actual_sha256,omitempty"`
	Describe *describeOut `json:"describe,omitempty"`
	// Problems are what the plugin's Validate says of its nodes' configs
	// ("node \"ID\": problem"; placeholders are not resolved).
	Problems []string `json:"problems"`
	Error    string   `json:"error,omitempty"`
}

type describeOut struct {
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	Description string     `json:"description,omitempty"`
	Kinds       []string   `json:"kinds"` // empty: every kind
	Fields      []fieldOut `json:"fields"`
}

type fieldOut struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required"`
	Description string `json:"description,omitempty"`
}

func newPluginsCmd() *cobra.Command {
	var asJSON, noValidate bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "plugins FILE",
		Short: "List the plugins a graph uses: where each resolves, its pinned hash, what it says of itself",
		Long: `List the plugins a graph uses: the built-in ones its nodes name and the
vendor plugins it declares. For each: the binary it resolves to, the pinned
sha256 and whether the file still matches it, the nodes it serves, what
the plugin's Describe says (version, node kinds, config fields) and what its
Validate says of each node's config (--no-validate skips it). Each plugin is
started once. Exit 1 when a plugin is missing, refused (changed binary) or
does not answer, or when a node's config has problems.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := loadGraphForCmd(cmd, args[0], nil)
			if err != nil {
				return err
			}
			reports := inspectPlugins(cmd.Context(), g, timeout, !noValidate)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(reports); err != nil {
					return err
				}
			} else {
				printPlugins(cmd.OutOrStdout(), reports)
			}
			for _, r := range reports {
				if r.Error != "" || len(r.Problems) > 0 {
					return withCode(exitError, nil)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON on stdout")
	cmd.Flags().BoolVar(&noValidate, "no-validate", false, "do not ask the plugins to validate their nodes' configs")
	cmd.Flags().DurationVar(&timeout, "timeout", 20*time.Second, "time allowed to each plugin to start and answer Describe")
	cmd.AddCommand(newPluginsNewCmd())
	return cmd
}

// inspectPlugins reports on every plugin g uses, in name order.
func inspectPlugins(ctx context.Context, g *graphs.Graph, timeout time.Duration, validate bool) []pluginReport {
	if ctx == nil {
		ctx = context.Background()
	}
	byName := map[string]*pluginReport{}
	for name, ref := range g.Plugins {
		byName[name] = &pluginReport{Name: name, Path: ref.Path, SHA256: ref.SHA256, Nodes: []string{}, Problems: []string{}}
	}
	for _, n := range g.Nodes {
		r := byName[n.Plugin]
		if r == nil {
			r = &pluginReport{Name: n.Plugin, Builtin: true, Nodes: []string{}, Problems: []string{}}
			byName[n.Plugin] = r
		}
		r.Nodes = append(r.Nodes, n.ID)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)

	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, StartTimeout: timeout})
	defer h.Close()
	out := make([]pluginReport, 0, len(names))
	for _, name := range names {
		r := byName[name]
		inspectBinary(r, g)
		cctx, cancel := context.WithTimeout(ctx, timeout)
		info, err := h.Describe(cctx, name)
		cancel()
		if err != nil {
			r.Error = err.Error()
			var pe *host.PluginError
			if errors.As(err, &pe) && pe.Path != "" && r.Resolved == "" {
				r.Resolved = pe.Path
			}
		} else {
			d := &describeOut{Name: info.Name, Version: info.Version, Description: info.Description,
				Kinds: []string{}, Fields: []fieldOut{}}
			for _, k := range info.Kinds {
				d.Kinds = append(d.Kinds, string(k))
			}
			for _, f := range info.Fields {
				d.Fields = append(d.Fields, fieldOut(f))
			}
			r.Describe = d
		}
	}
	if validate {
		for _, p := range host.ValidateNodes(ctx, h, usable(g, byName)) {
			r := byName[p.Plugin]
			r.Problems = append(r.Problems, fmt.Sprintf("node %q: %s", p.NodeID, p.Message))
		}
	}
	for _, name := range names {
		out = append(out, *byName[name])
	}
	return out
}

// usable returns g with only the nodes whose plugin answered Describe (the
// others already carry their plugin's error).
func usable(g *graphs.Graph, byName map[string]*pluginReport) *graphs.Graph {
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
func inspectBinary(r *pluginReport, g *graphs.Graph) {
	if r.Builtin {
		if exe, err := os.Executable(); err == nil {
			r.Resolved = exe
		}
		r.Checksum = "built in"
		return
	}
	r.Resolved = host.ResolvePath(g.Dir, g.Plugins[r.Name])
	actual, err := host.FileSHA256(r.Resolved)
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

func printPlugins(w io.Writer, reports []pluginReport) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		what := "vendor plugin"
		if r.Builtin {
			what = "built in"
		}
		fmt.Fprintf(w, "%s (%s, %d node%s)\n", r.Name, what, len(r.Nodes), pluginsPlural(len(r.Nodes)))
		if r.Builtin {
			fmt.Fprintf(w, "  binary:  %s plugin-serve %s\n", r.Resolved, r.Name)
		} else {
			fmt.Fprintf(w, "  path:    %s\n  binary:  %s\n", r.Path, r.Resolved)
			switch r.Checksum {
			case "matches":
				fmt.Fprintf(w, "  sha256:  %s (pinned, matches)\n", r.SHA256)
			case "differs":
				fmt.Fprintf(w, "  sha256:  %s pinned, but the file's is %s: REFUSED\n", r.SHA256, r.Actual)
			case "not pinned":
				fmt.Fprintf(w, "  sha256:  not pinned (the file's is %s)\n", r.Actual)
			default:
				fmt.Fprintf(w, "  sha256:  %s\n", r.Checksum)
			}
		}
		if d := r.Describe; d != nil {
			fmt.Fprintf(w, "  plugin:  %s %s", d.Name, d.Version)
			if d.Description != "" {
				fmt.Fprintf(w, " — %s", d.Description)
			}
			fmt.Fprintln(w)
			kinds := "every kind"
			if len(d.Kinds) > 0 {
				kinds = strings.Join(d.Kinds, ", ")
			}
			fmt.Fprintf(w, "  kinds:   %s\n", kinds)
			for j, f := range d.Fields {
				label := "  fields:  "
				if j > 0 {
					label = "           "
				}
				req := ""
				if f.Required {
					req = ", required"
				}
				fmt.Fprintf(w, "%s%s (%s%s)", label, f.Name, f.Type, req)
				if f.Description != "" {
					fmt.Fprintf(w, " — %s", f.Description)
				}
				fmt.Fprintln(w)
			}
		}
		for j, p := range r.Problems {
			label := "  config:  "
			if j > 0 {
				label = "           "
			}
			fmt.Fprintf(w, "%s%s\n", label, p)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "  error:   %s\n", r.Error)
		}
	}
}

func pluginsPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
