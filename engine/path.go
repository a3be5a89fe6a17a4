package engine

import "path/filepath"

// absPath makes a graph file path absolute so that a run can be resumed
// from another working directory (its exec steps run in the graph's folder).
func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
