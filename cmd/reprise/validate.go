package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/graphs"
)

func newValidateCmd() *cobra.Command {
	var opts validateOptions
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a graph file and report every problem at once",
		Long: `Check a graph file (YAML or JSON, version 1) and report every problem at
once, one per line on stderr, as FILE:LINE:COL: node "ID": message.
Exit 0 with a one-line summary when the graph is valid, 1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			res := runValidate(cmd.Context(), opts)
			if opts.JSON {
				return printValidateJSON(cmd.OutOrStdout(), res.File, res.Graph, res.Err, res.Problems)
			}
			if res.Err != nil {
				return reportGraphError(cmd.ErrOrStderr(), res.Err)
			}
			if len(res.Problems) > 0 {
				for _, p := range res.Problems {
					if p.Scanner != "" {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s:%s\n", res.File, p.String())
						continue
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s:%s (plugin %s)\n", res.File, p.String(), p.Plugin)
				}
				return withCode(exitError, nil)
			}
			fmt.Fprintln(cmd.OutOrStdout(), validSummary(res.File, res.Graph))
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Offline, "offline", false, "check the file only, without asking the plugins to check their nodes' settings")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as one JSON object on stdout")
	return cmd
}

// validateOptions are the options of `reprise validate FILE`.
type validateOptions struct {
	// File is the graph file.
	File string
	// Offline checks the file only, without the plugins (--offline).
	Offline bool
	// JSON asks for one JSON object (the command prints it).
	JSON bool
}

// validateResult is what validate found: the graph when it loads, else
// why not (a *graphs.ValidationError lists every problem), and the
// problems its plugins and scanners found in a graph that loads.
type validateResult struct {
	File     string
	Graph    *graphs.Graph
	Err      error
	Problems []host.NodeProblem
}

// runValidate checks the graph file opts.File and, unless opts.Offline,
// asks each node's plugin to check its settings and loads the scanners.
func runValidate(ctx context.Context, opts validateOptions) validateResult {
	tuneGCForGraphs(opts.File)
	res := validateResult{File: opts.File}
	res.Graph, res.Err = graphs.Load(opts.File)
	if res.Err == nil && !opts.Offline {
		res.Problems = validateWithPlugins(ctx, res.Graph)
		res.Problems = append(res.Problems, validateScanners(ctx, res.Graph)...)
	}
	return res
}

// validateWithPlugins asks each node's plugin to check the node's `with`
// (Validate has no side effects); a plugin that cannot start or answer is a
// problem for each of its nodes.
func validateWithPlugins(ctx context.Context, g *graphs.Graph) []host.NodeProblem {
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir})
	defer h.Close()
	return host.ValidateNodes(ctx, h, g)
}

// validateScanners loads the graph's scanners (hash lists, yara rules,
// ClamAV databases, the commands themselves); each that cannot be used is a
// problem at the line of its declaration.
func validateScanners(ctx context.Context, g *graphs.Graph) []host.NodeProblem {
	_, probs := engine.CompileScanners(ctx, g)
	out := make([]host.NodeProblem, len(probs))
	for i, p := range probs {
		out[i] = host.NodeProblem{Scanner: p.Scanner, Pos: p.Pos, Message: p.Err.Error()}
	}
	return out
}

// tuneGCForGraphs lets the garbage collector run less often in the
// one-shot commands that read a whole graph (validate, plan, graph): the
// parse leaves a large, short-lived tree behind, and the default GOGC=100
// spends a quarter of the run collecting it. GOGC=400 applies to JSON
// files and to YAML files under 8 MiB: the YAML library's own tree is about
// 30 times the file's size, and a larger GOGC would multiply that peak for
// a huge YAML file. A soft memory limit of 64 times the file's size (at
// least 512 MiB) caps the growth GOGC=400 allows, far above what the graph
// needs, so the collector never has to fight for it. GOGC and GOMEMLIMIT,
// when set, win.
func tuneGCForGraphs(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return // Load reports it
	}
	if os.Getenv("GOGC") == "" && (strings.EqualFold(filepath.Ext(path), ".json") || fi.Size() < 8<<20) {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(512<<20, 64*fi.Size()))
	}
}

// reportGraphError prints a graph's validation problems, one per line,
// and returns the exit-1 error; an error that carries its exit code
// already is returned as is, others (an unreadable file) exit 1 and are
// printed by run.
func reportGraphError(stderr io.Writer, err error) error {
	var ce *exitCodeError
	if errors.As(err, &ce) {
		return err
	}
	var ve *graphs.ValidationError
	if !errors.As(err, &ve) {
		return withCode(exitError, err)
	}
	for _, p := range ve.Problems {
		fmt.Fprintln(stderr, p.Error())
	}
	return withCode(exitError, nil)
}

// loadGraph loads a graph and cuts it to targets when some are given; a
// target that is not in the graph exits 1 (printed by run).
func loadGraph(path string, targets []string) (*graphs.Graph, error) {
	g, err := graphs.Load(path)
	if err != nil {
		return nil, err
	}
	if len(targets) > 0 {
		sub, err := g.Subset(targets)
		if err != nil {
			return nil, withCode(exitError, err)
		}
		g = sub
	}
	return g, nil
}

// validSummary is the line validate prints for a valid graph.
func validSummary(path string, g *graphs.Graph) string {
	counts := g.KindCounts()
	parts := make([]string, 0, len(graphs.Kinds))
	for _, k := range graphs.Kinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return fmt.Sprintf("%s: valid — %d nodes (%s), %d edges", path, len(g.Nodes), strings.Join(parts, ", "), g.EdgeCount())
}

type validateJSON struct {
	File     string         `json:"file"`
	Valid    bool           `json:"valid"`
	Nodes    int            `json:"nodes,omitempty"`
	Kinds    map[string]int `json:"kinds,omitempty"`
	Edges    int            `json:"edges,omitempty"`
	Hash     string         `json:"hash,omitempty"`
	Problems []problemJSON  `json:"problems,omitempty"`
}

type problemJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Node    string `json:"node,omitempty"`
	Field   string `json:"field,omitempty"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
	Text    string `json:"text"`
}

func printValidateJSON(w io.Writer, path string, g *graphs.Graph, err error, pluginProblems []host.NodeProblem) error {
	out := validateJSON{File: path}
	var ve *graphs.ValidationError
	switch {
	case err == nil && len(pluginProblems) > 0:
		for _, p := range pluginProblems {
			if p.Scanner != "" {
				out.Problems = append(out.Problems, problemJSON{File: path, Line: p.Pos.Line, Col: p.Pos.Column,
					Field: "scanners." + p.Scanner, Message: p.Message, Text: path + ":" + p.String()})
				continue
			}
			out.Problems = append(out.Problems, problemJSON{File: path, Line: p.Pos.Line, Col: p.Pos.Column,
				Node: p.NodeID, Field: p.Field, Message: "plugin " + p.Plugin + ": " + p.Message,
				Text: fmt.Sprintf("%s:%s (plugin %s)", path, p.String(), p.Plugin)})
		}
	case err == nil:
		out.Valid, out.Nodes, out.Edges, out.Hash = true, len(g.Nodes), g.EdgeCount(), g.Hash()
		out.Kinds = map[string]int{}
		for k, n := range g.KindCounts() {
			out.Kinds[string(k)] = n
		}
	case errors.As(err, &ve):
		for _, p := range ve.Problems {
			out.Problems = append(out.Problems, problemJSON{File: p.File, Line: p.Line, Col: p.Col,
				Node: p.Node, Field: p.Field, Value: p.Value, Message: p.Message, Text: p.Error()})
		}
	default:
		return withCode(exitError, err)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if werr := enc.Encode(out); werr != nil {
		return withCode(exitError, werr)
	}
	if !out.Valid {
		return withCode(exitError, nil)
	}
	return nil
}
