package main

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/graphs"
)

// graphOptions are the options of `reprise graph FILE | --run RUN`.
type graphOptions struct {
	// File is the graph file ("": draw a run's graph).
	File string
	// Run is the run whose graph to draw, coloured by state ("latest" or
	// "": the newest), when RunSet.
	Run    string
	RunSet bool
	// StatePath is the state file of Run (--state).
	StatePath string
	// Format is dot, mermaid or svg.
	Format string
	// Targets draws only these nodes and what they depend on (--target).
	Targets []string
	// Output is the file to write ("" or "-": stdout; the command writes it).
	Output string
}

func newGraphCmd() *cobra.Command {
	var opts graphOptions
	var statePath *string
	cmd := &cobra.Command{
		Use:   "graph FILE | --run RUN",
		Short: "Draw the graph as graphviz DOT, Mermaid or SVG",
		Long: `Draw the graph: shapes by kind (infrastructure box3d, application rounded
box, interface hexagon, data cylinder), colours by effective criticality
(vital red, high orange, normal yellow, low grey), each interface on a dashed
line between its two ends, arrows from a dependency to what depends on it.
With --run, the graph a run started with is drawn with each node coloured
by its state in that run ("latest": the newest run).
--format svg runs graphviz's dot, which must be on PATH.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File, opts.RunSet, opts.StatePath = argOr(args, ""), cmd.Flags().Changed("run"), *statePath
			out, err := runGraph(cmd.Context(), opts)
			if err != nil {
				return reportGraphError(cmd.ErrOrStderr(), err)
			}
			if opts.Output == "" || opts.Output == "-" {
				_, err = cmd.OutOrStdout().Write(out)
			} else {
				err = os.WriteFile(opts.Output, out, 0o644)
			}
			if err != nil {
				return withCode(exitError, fmt.Errorf("write %q: %w", opts.Output, err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "dot", "dot, mermaid or svg")
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "draw only this node and what it depends on (repeatable)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&opts.Run, "run", "", `colour the nodes by their state in this run ("latest": the newest run)`)
	statePath = addStateFlag(cmd)
	return cmd
}

// runGraph draws the graph opts.File, or the graph run opts.Run started
// with coloured by its nodes' states, in opts.Format. Bad options are usage
// errors; a graph file with problems returns its *graphs.ValidationError
// (reportGraphError prints it); anything else exits 1.
func runGraph(ctx context.Context, opts graphOptions) ([]byte, error) {
	switch opts.Format {
	case "dot", "mermaid", "svg":
	default:
		return nil, usageError("--format %q: want dot, mermaid or svg", opts.Format)
	}
	var g *graphs.Graph
	var err error
	ro := graphs.RenderOptions{Targets: opts.Targets}
	switch {
	case opts.RunSet && opts.File != "":
		return nil, usageError("graph: give a graph FILE or --run RUN, not both")
	case opts.RunSet:
		id := opts.Run
		if id == "latest" {
			id = ""
		}
		if g, ro.States, ro.Certified, err = runStatesCertified(opts.StatePath, id); err != nil {
			return nil, withCode(exitError, err)
		}
	case opts.File != "":
		tuneGCForGraphs(opts.File)
		if g, err = graphs.Load(opts.File); err != nil {
			return nil, err
		}
	default:
		return nil, usageError("graph: give a graph FILE or --run RUN")
	}
	var buf bytes.Buffer
	if opts.Format == "mermaid" {
		err = graphs.RenderMermaid(&buf, g, ro)
	} else {
		err = graphs.RenderDOT(&buf, g, ro)
	}
	if err != nil {
		return nil, withCode(exitError, err)
	}
	if opts.Format != "svg" {
		return buf.Bytes(), nil
	}
	var svg bytes.Buffer
	if err := renderSVG(ctx, buf.Bytes(), &svg); err != nil {
		return nil, withCode(exitError, err)
	}
	return svg.Bytes(), nil
}
