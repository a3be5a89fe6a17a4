//go:build !unix

package builtin

import (
	"context"
	"io"
	"os"
	"os/exec"
)

// runProcess runs spec through os/exec where exec has no faster path.
func runProcess(ctx context.Context, spec spawnSpec, stdin *os.File, stdout, stderr io.Writer) (exitErr, err error) {
	cmd := &exec.Cmd{Path: spec.path, Args: spec.argv, Env: spec.env, Dir: spec.dir,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, WaitDelay: ioWait}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { endGroup(cmd.Process.Pid, killGrace) })
	defer stop()
	return cmd.Wait(), nil
}
