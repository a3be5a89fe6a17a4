// Package host runs reprise's restore steps in plugin processes through
// hashicorp/go-plugin over gRPC (AutoMTLS, gRPC only). It implements
// step.Host.
//
// One process per plugin name, started on the first call (once, however
// many callers race for it) and reused by every node, with concurrent calls.
// Built-in plugins (exec, http, manual, noop) are the reprise executable
// re-run as `reprise plugin-serve NAME`; vendor plugins are the binaries the
// graph declares, relative paths resolving from the graph's folder.
//
// What happens on failure:
//   - before start: a missing or non-executable binary, an undeclared plugin,
//     or a pinned sha256 that differs (go-plugin's SecureConfig; the error
//     gives the expected and the actual hash) fail the call with a
//     PluginError naming the plugin and its path (ErrNotFound,
//     ErrNotExecutable, ErrUndeclared, ErrChecksum). Nothing is cached: the
//     next call tries again.
//   - at start: a process that does not complete the handshake fails with
//     ErrHandshake (wrong cookie, protocol or version; its output quoted) or
//     ErrStartTimeout (Options.StartTimeout), and is killed.
//   - during a call: the caller's deadline or cancellation ends the call
//     (the plugin sees its context cancelled) and the error wraps ctx.Err();
//     the plugin keeps running. If the process dies (panic, os.Exit, a
//     signal), every call in flight fails with ErrCrashed, the exit status
//     and the last lines of its stderr; its process tree is killed and the
//     next call starts a new process.
//   - a step that ran and failed is not an error: it is a StepResult with
//     StepFailed.
//
// Every plugin process leads its own session (and process group). Close,
// and the clean-up after a crash, send SIGKILL to every process left in
// it, so that nothing a plugin started survives reprise; on Linux the
// session's members are found in /proc, which also catches commands that
// made their own process group (the exec built-in does). Plugins built on
// plugins/sdk also stop by themselves when the reprise process dies.
//
// Plugin stderr and hclog lines go to Options.Logger with plugin= (and
// node= when exactly one call is in flight) fields. Configs may hold
// secrets: the host never logs them.
package host
