package engine

import (
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
)

// The step contract moved to package engine/step, the journal entry types
// to package engine/state. These aliases keep code
// written against the old names compiling while it is converted; new code
// uses package step. They will be removed.
type (
	// Deprecated: use step.Request.
	StepRequest = step.Request
	// Deprecated: use step.Event.
	StepEvent = step.Event
	// Deprecated: use step.Result.
	StepResult = step.Result
	// Deprecated: use step.CheckResult.
	CheckResult = step.CheckResult
	// Deprecated: use step.PluginInfo.
	PluginInfo = step.PluginInfo
	// Deprecated: use step.Host.
	PluginHost = step.Host
)

// Deprecated: use step.Succeeded, step.Failed, step.Waiting,
// step.ModeNormal, step.ModeDryRun, step.EventLog, step.EventOutput.
const (
	StepSucceeded = step.Succeeded
	StepFailed    = step.Failed
	StepWaiting   = step.Waiting
	ModeNormal    = step.ModeNormal
	ModeDryRun    = step.ModeDryRun
	EventLog      = step.EventLog
	EventOutput   = step.EventOutput
	EventProgress = step.EventProgress
)

// Deprecated: use state.EntryType.
type EntryType = state.EntryType

// Deprecated: use the state.Entry… constants.
const (
	EntryRunStarted     = state.EntryRunStarted
	EntryRunResumed     = state.EntryRunResumed
	EntryRunFinished    = state.EntryRunFinished
	EntryRunParked      = state.EntryRunParked
	EntryRunInterrupted = state.EntryRunInterrupted
	EntryGraphChanged   = state.EntryGraphChanged
	EntryStarted        = state.EntryStarted
	EntrySucceeded      = state.EntrySucceeded
	EntryFailed         = state.EntryFailed
	EntryRetrying       = state.EntryRetrying
	EntryBlocked        = state.EntryBlocked
	EntryWaiting        = state.EntryWaiting
	EntryApproved       = state.EntryApproved
	EntryMarked         = state.EntryMarked
	EntryReset          = state.EntryReset
	EntryRestored       = state.EntryRestored
	EntryInterrupted    = state.EntryInterrupted
	EntrySkipped        = state.EntrySkipped
	EntryCleanedUp      = state.EntryCleanedUp
)
