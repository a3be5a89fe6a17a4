package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/host"
)

func newPluginsCmd() *cobra.Command {
	var opts pluginsOptions
	cmd := &cobra.Command{
		Use:   "plugins FILE",
		Short: "List the plugins a graph uses: where each resolves, its pinned hash, what it says of itself",
		Long: `List the plugins a graph uses: the built-in ones its nodes name and the
vendor plugins it declares. For each: the binary it resolves to, the pinned
sha256 and whether the file still matches it, the nodes it serves, what
the plugin's Describe says (version, node kinds, config fields, whether it
lists restore points) and what its Validate says of each node's config
(--no-validate skips it). Each plugin is
started once. Exit 1 when a plugin is missing, refused (changed binary) or
does not answer, or when a node's config has problems.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			reports, err := runPlugins(cmd.Context(), opts)
			if err != nil {
				return reportGraphError(cmd.ErrOrStderr(), err)
			}
			if opts.JSON {
				if err := writeJSON(cmd.OutOrStdout(), reports); err != nil {
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
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the list as JSON on stdout")
	cmd.Flags().BoolVar(&opts.NoValidate, "no-validate", false, "do not ask the plugins to validate their nodes' configs")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 20*time.Second, "time allowed to each plugin to start and answer Describe")
	cmd.AddCommand(newPluginsNewCmd())
	return cmd
}

// pluginsOptions are the options of `reprise plugins FILE`.
type pluginsOptions struct {
	// File is the graph file.
	File string
	// NoValidate does not ask the plugins to validate their nodes' configs.
	NoValidate bool
	// Timeout is the time each plugin has to start and answer Describe.
	Timeout time.Duration
	// JSON asks for JSON (the command prints it).
	JSON bool
}

// runPlugins inspects the plugins the graph opts.File uses, starting each
// once (host.Inspect). A graph with problems returns its
// *graphs.ValidationError (reportGraphError prints it).
func runPlugins(ctx context.Context, opts pluginsOptions) ([]host.PluginReport, error) {
	g, err := loadGraph(opts.File, nil)
	if err != nil {
		return nil, err
	}
	return host.Inspect(ctx, g, host.InspectOptions{Timeout: opts.Timeout, NoValidate: opts.NoValidate}), nil
}

func printPlugins(w io.Writer, reports []host.PluginReport) {
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
			if d.ListsRestorePoints {
				fmt.Fprintln(w, "  points:  lists restore points (ListRestorePoints: restore_points: {from: plugin} allowed)")
			}
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
