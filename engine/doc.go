// Package engine runs a graph's restore steps through plugins, in
// dependency order, keeping every transition in a state.Store so that a run
// of days or months survives anything.
//
// # Scheduling
//
// Ready nodes (every dependency succeeded, skipped, approved or marked done)
// wait in a heap ordered by effective criticality, then the longest
// estimate-weighted path still ahead of them, then id. At most
// Options.Parallelism steps run at once, and at most a plugin's
// max_parallel through that plugin. Each attempt has the node's timeout; a
// failed attempt is retried after an exponential backoff with jitter from
// the graph's retry_delay, up to the node's retries. A node that fails for
// good blocks its descendants; independent branches go on, unless
// Options.FailFast stops new starts. A step answering "waiting" (a manual
// gate) parks the node until Approve.
//
// # Durability
//
// Every transition is one state.Change: the node's record and its journal
// entry, in one transaction. A node is recorded running before its step
// starts, and succeeded before any dependent starts; the scheduler hands all
// the transitions that are ready to the store at once (one commit for many
// nodes: the store group-commits). When steps are short and all those
// started should end within one commit's time, the next commit waits for
// them, at most that long, so that it carries their outcomes and their
// dependents' starts at once. If the process dies, the state file says
// which steps may have been running: Resume asks their plugin's Check and
// runs them again only if they are not restored. A succeeded node is never
// run again, except by an explicit retry or an edited graph that changes it.
// If the store fails, the run stops at once (running steps are cancelled and
// nothing more is recorded); a resume then sorts it out as after a crash.
//
// # Interrupts
//
// Drain (the first SIGINT) starts nothing new and lets running steps finish;
// cancelling the context given to Start or Resume (the second SIGINT)
// cancels them, and their nodes go back to pending. Either way the run ends
// "interrupted", with every finished step recorded, and can be resumed.
//
// # Secrets
//
// `${secret:NAME}` and `${secret:file:PATH}` placeholders are resolved in
// the step's goroutine just before the call. Resolved values (and each line
// of a multi-line one) are remembered by a Redactor and replaced by
// [redacted] in every message, journal entry and log line before it leaves
// the engine; they are never stored. A step whose output holds one fails:
// secrets do not travel through the state file. `${env:NAME}` is plain
// configuration, never redacted.
//
// # Reading a run from elsewhere
//
// bbolt's lock is exclusive, so the running process serves reads and
// approvals over a unix socket beside the state file (package
// engine/control); package engine/view turns a run's records into what
// `reprise status` and `reprise report` show, and computes the ETA the
// engine's events carry (view.Estimate).
package engine
