package host

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// parentDeath makes the kernel send SIGKILL to the plugin when the reprise
// process that started it dies without ending it (SIGKILL, OOM killer, a
// crash): a plugin written on go-plugin alone, or in another language,
// would otherwise keep running, holding what it holds (a half-done restore
// on a hypervisor, locks).
//
// SIGKILL rather than SIGTERM: the kernel sends one signal only, and nobody
// is left to follow a SIGTERM up, so a plugin that ignores or mishandles
// SIGTERM would live forever. A plugin that cleans up when the host dies
// clears the signal at its start (prctl(PR_SET_PDEATHSIG, 0), from its main
// thread) and watches its parent itself: plugins/sdk does (its calls get a
// grace, then it kills what is left in its session, then exits; a SIGKILL
// would cut that short). plugins/python's helper keeps the signal: its
// clean-up is small (a 2 s grace, its socket folder), and a call stuck in C
// code would keep its interpreter from ever exiting. What a plugin that
// keeps the signal started itself dies only if it asked for it (its own
// parent-death signal, as the exec built-in gives its commands): reprise,
// being dead, can no longer kill the plugin's session.
//
// The kernel sends the signal when the thread that forked the plugin ends,
// not the process (go.dev/issue/27505). The Go runtime ends a thread only
// when a goroutine exits locked to it (runtime.LockOSThread without
// UnlockOSThread); reprise, go-plugin and their other dependencies never do
// that today, but any goroutine that did, on the thread that happened to
// fork a plugin, would kill that plugin. So startProcess forks every plugin
// from one goroutine locked to its thread that never exits: that thread
// runs nothing else, and lives as long as the process.
//
// What it does not cover: the kernel clears the signal when the plugin
// executes a set-user-ID binary or one with file capabilities, and a plugin
// path that is a wrapper script running the real plugin as a child (no
// `exec`) passes it to the shell only.
func parentDeath(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// forker is the goroutine, locked to its thread for the life of the
// process, that starts the plugin processes.
var forker struct {
	once sync.Once
	jobs chan func()
}

// startProcess starts cmd from the forker's thread (see parentDeath).
func startProcess(cmd *exec.Cmd) error {
	forker.once.Do(func() {
		forker.jobs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays while the process runs
			for job := range forker.jobs {
				job()
			}
		}()
	})
	errc := make(chan error, 1)
	forker.jobs <- func() { errc <- cmd.Start() }
	return <-errc
}
