//go:build !linux

package builtin

import "os/exec"

// lookPath finds a bare program name in PATH; only Linux remembers the
// answers (pathcache_linux.go).
func lookPath(name string) (string, error) { return exec.LookPath(name) }
