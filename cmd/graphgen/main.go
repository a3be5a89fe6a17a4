// Command graphgen writes a synthetic graph file (a layered DAG) for
// benchmarks: graphgen -nodes 100000 -edges 200000 -format json -o big.json
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/reprise-si/reprise/internal/graphgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graphgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 1000, "number of nodes")
	edges := fs.Int("edges", 0, "about this many dependencies (default: twice -nodes)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same file")
	format := fs.String("format", "yaml", "yaml or json")
	plugin := fs.String("plugin", "noop", "noop, or exec (nodes run a shell command and pass outputs on)")
	out := fs.String("o", "", "output file (default stdout)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *nodes < 1 || *edges < 0 || (*format != "yaml" && *format != "json") || (*plugin != "noop" && *plugin != "exec") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "graphgen: want -nodes ≥ 1, -edges ≥ 0, -format yaml|json, -plugin noop|exec and no arguments")
		return 2
	}
	doc := graphgen.Generate(graphgen.Options{Nodes: *nodes, Edges: *edges, Seed: *seed, Plugin: *plugin})
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "graphgen: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	var err error
	if *format == "json" {
		err = doc.WriteJSON(w)
	} else {
		err = doc.WriteYAML(w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "graphgen: write: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "graphgen: %d nodes, %d edges\n", len(doc.Nodes), doc.Edges())
	return 0
}
