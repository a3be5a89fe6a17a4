//go:build !unix

package builtin

import (
	"os"
	"os/exec"
	"time"
)

func newGroup(*exec.Cmd) {}

func endGroup(pid int, _ time.Duration) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
