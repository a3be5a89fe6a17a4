package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/graphs"
)

func init() { register("graph", newGraphCmd) }

func newGraphCmd() *cobra.Command {
	var format, output string
	var targets []string
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw the graph as graphviz DOT, Mermaid or SVG",
		Long: `Draw the graph: shapes by kind (infrastructure box3d, application rounded
box, interface hexagon, data cylinder), colours by effective criticality
(vital red, high orange, normal yellow, low grey), each interface on a dashed
line between its two ends, arrows from a dependency to what depends on it.
--format svg runs graphviz's dot, which must be on PATH.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneGCForGraphs(args[0])
			switch format {
			case "dot", "mermaid", "svg":
			default:
				return usageError("--format %q: want dot, mermaid or svg", format)
			}
			g, err := graphs.Load(args[0])
			if err != nil {
				return reportGraphError(cmd.ErrOrStderr(), err)
			}
			var buf bytes.Buffer
			opts := graphs.RenderOptions{Targets: targets}
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
				if out, err = dotToSVG(cmd, out); err != nil {
					return withCode(exitError, err)
				}
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
	return cmd
}

// dotToSVG lays out a DOT graph with graphviz.
func dotToSVG(cmd *cobra.Command, dot []byte) ([]byte, error) {
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, errors.New("--format svg needs graphviz's dot on PATH (apt-get install graphviz), or use --format dot")
	}
	c := exec.CommandContext(cmd.Context(), path, "-Tsvg")
	c.Stdin = bytes.NewReader(dot)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("run dot -Tsvg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
