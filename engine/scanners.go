package engine

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/reprise-si/reprise/engine/scan"
	"github.com/reprise-si/reprise/graphs"
)

// ScannerProblem is a declared scanner that cannot be used: a hash list
// that cannot be read, rules that do not load, a command not installed.
type ScannerProblem struct {
	Scanner string
	Pos     graphs.Position // where the scanner is declared
	Err     error
}

// String returns "LINE:COL: scanner \"NAME\": message".
func (p ScannerProblem) String() string {
	return fmt.Sprintf("%d:%d: scanner %q: %v", p.Pos.Line, p.Pos.Column, p.Scanner, p.Err)
}

// ScanSpecs returns the graph's scanners as scan.Specs, their paths
// resolved from the graph's folder.
func ScanSpecs(g *graphs.Graph) []scan.Spec {
	specs := make([]scan.Spec, len(g.Scanners))
	for i, s := range g.Scanners {
		specs[i] = scan.Spec{Name: s.Name, Type: scan.Type(s.Type), HashLists: resolvePaths(g.Dir, s.HashLists),
			Names: s.Names, Threshold: s.Threshold, MinEntropy: s.MinEntropy, Rules: resolvePaths(g.Dir, s.Rules)}
		if s.Database != "" {
			specs[i].Database = resolvePath(g.Dir, s.Database)
		}
	}
	return specs
}

// CompileScanners loads every scanner the graph declares (hash lists read,
// rules and databases loaded by their command) and returns the set, or one
// problem per scanner that cannot be used.
func CompileScanners(ctx context.Context, g *graphs.Graph) (*scan.Set, []ScannerProblem) {
	specs := ScanSpecs(g)
	var probs []ScannerProblem
	for i, sp := range specs {
		if _, err := scan.Compile(ctx, []scan.Spec{sp}, scan.Options{}); err != nil {
			probs = append(probs, ScannerProblem{Scanner: sp.Name, Pos: g.Scanners[i].Pos, Err: unwrapScanner(err, sp.Name)})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	set, err := scan.Compile(ctx, specs, scan.Options{})
	if err != nil { // the scanners compiled one by one: only ctx can fail now
		return nil, []ScannerProblem{{Err: err}}
	}
	return set, nil
}

// unwrapScanner drops the `scanner "NAME": ` prefix that String adds back.
func unwrapScanner(err error, name string) error {
	prefix := fmt.Sprintf("scanner %q: ", name)
	if msg := err.Error(); len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return &prefixless{msg: msg[len(prefix):], err: err}
	}
	return err
}

type prefixless struct {
	msg string
	err error
}

func (p *prefixless) Error() string { return p.msg }
func (p *prefixless) Unwrap() error { return p.err }

func resolvePaths(dir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = resolvePath(dir, p)
	}
	return out
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}
