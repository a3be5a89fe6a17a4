package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/graphs"
)

func newGraphCmd() *cobra.Command {
	var format, output, runID string
	var targets []string
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
			switch format {
			case "dot", "mermaid", "svg":
			default:
				return usageError("--format %q: want dot, mermaid or svg", format)
			}
			var g *graphs.Graph
			var err error
			opts := graphs.RenderOptions{Targets: targets}
			switch {
			case cmd.Flags().Changed("run") && len(args) == 1:
				return usageError("graph: give a graph FILE or --run RUN, not both")
			case cmd.Flags().Changed("run"):
				id := runID
				if id == "latest" {
					id = ""
				}
				if g, opts.States, opts.Certified, err = runStatesCertified(*statePath, id); err != nil {
					return withCode(exitError, err)
				}
			case len(args) == 1:
				tuneGCForGraphs(args[0])
				if g, err = graphs.Load(args[0]); err != nil {
					return reportGraphError(cmd.ErrOrStderr(), err)
				}
			default:
				return usageError("graph: give a graph FILE or --run RUN")
			}
			var buf bytes.Buffer
			if format == "mermaid" {
				err = graphs.RenderMermaid(&buf, g, opts)
			} else {
				err = graphs.RenderDOT(&buf, g, opts)
			}
			if err != nil {
				return withCode(exitError, err)
			}
			out := buf.Bytes()
			if format == "svg" {
				var svg bytes.Buffer
				if err := renderSVG(cmd.Context(), out, &svg); err != nil {
					return withCode(exitError, err)
				}
				out = svg.Bytes()
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(out)
			} else {
				err = os.WriteFile(output, out, 0o644)
			}
			if err != nil {
				return withCode(exitError, fmt.Errorf("write %q: %w", output, err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "dot, mermaid or svg")
	cmd.Flags().StringArrayVar(&targets, "target", nil, "draw only this node and what it depends on (repeatable)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&runID, "run", "", `colour the nodes by their state in this run ("latest": the newest run)`)
	statePath = addStateFlag(cmd)
	return cmd
}
