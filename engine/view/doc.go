// Package view is the one model of where a run stands. It loads a run
// (record, node records, journal, the graph snapshot parsed once,
// graphs.Analyze called once) and computes everything a screen shows:
// counts and percentages by kind and effective criticality, the ETA, the
// root causes (failed nodes and what each blocks), the time span and the
// active time, and whether the run is live or was interrupted.
//
// `reprise status` and `reprise report` (and any later view of a run: a web
// page, a remote client) read a Model; each keeps its own output format,
// and the numbers come from here. The engine's live progress uses the same
// ETA computation (Estimate).
//
// A Model is computed once (New, Load) and read-only afterwards: safe for
// concurrent readers. The package reads the state file only through
// Source and never writes.
package view
