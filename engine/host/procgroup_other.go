//go:build !unix

package host

import "os/exec"

// isolate does nothing where process groups do not exist.
func isolate(*exec.Cmd) {}

// killTree does nothing where process groups do not exist; go-plugin still
// kills the plugin process itself.
func killTree(int) {}
