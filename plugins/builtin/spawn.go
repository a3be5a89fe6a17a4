package builtin

import (
	"os"
	"strings"
	"time"
)

// How exec starts a command, made cheap for runs of thousands of short
// commands (a profile of 10,000 `true` nodes found the plugin's time in
// os/exec's 32 KiB copy buffers and the garbage they made, the PATH
// lookup, a second stat of the working folder, and threads blocked in
// wait): the program is looked up through a cache (pathcache_linux.go), the
// command is started directly (spawn_unix.go: no os/exec, one pipe per
// stream read through the runtime's poller with a pooled buffer) and, on
// Linux, reaped through a pidfd in the same poller instead of a thread
// blocked in waitid.

// ioWait is how long a command's output pipes may stay open after it has
// exited (a background process it started keeps them): then they are
// closed and the step does not wait for that process.
const ioWait = 2 * time.Second

// spawnSpec is one command to start.
type spawnSpec struct {
	path string   // the program: absolute, or relative to dir
	argv []string // argv[0] as the user wrote it
	env  []string
	dir  string
}

// commandEnv is the plugin's environment, then extra (the node's `env`),
// then own (the REPRISE_ variables exec sets), a later variable replacing
// an earlier one of the same name where it stood, as os/exec does. It is
// built without a map: own holds a few REPRISE_ variables, and extra is
// one already.
func commandEnv(extra map[string]string, own []string) []string {
	base := os.Environ()
	env := make([]string, 0, len(base)+len(extra)+len(own))
	for _, kv := range base {
		k := envKey(kv)
		if _, ok := extra[k]; ok || setsVar(own, k) {
			continue
		}
		env = append(env, kv)
	}
	for _, k := range sortedKeys(extra) {
		if !setsVar(own, k) {
			env = append(env, k+"="+extra[k])
		}
	}
	return append(env, own...)
}

// envKey is the name of a NAME=value entry.
func envKey(kv string) string {
	if i := strings.IndexByte(kv, '='); i >= 0 {
		return kv[:i]
	}
	return kv
}

// setsVar reports whether own (REPRISE_ variables only) sets variable k.
func setsVar(own []string, k string) bool {
	if !strings.HasPrefix(k, "REPRISE_") {
		return false
	}
	for _, kv := range own {
		if len(kv) > len(k) && kv[len(k)] == '=' && kv[:len(k)] == k {
			return true
		}
	}
	return false
}
