package main

import (
	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
)

// withStoppedRun opens the state file for writing as who, checks that run
// runID exists, and hands do an engine on it for an operator's decision on
// a run that no process runs (certify, restore-point, cleanup). The
// graph's notify targets hear of what it does (a zone certified), and the
// command waits a few seconds at most for their deliveries.
func withStoppedRun(statePath, who, runID string, do func(*engine.Engine) error) error {
	st, err := openStore(statePath, who)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := runByID(st, runID); err != nil {
		return err
	}
	if err := refuseLive(st, runID); err != nil {
		return err
	}
	log, closeLog, err := openLog(statePath)
	if err != nil {
		return err
	}
	defer closeLog()
	hook := watchNotify(st, nil)
	defer hook.close()
	return do(engine.New(st, host.New(host.Options{}), engine.Options{Logger: log, OnEvent: hook.onEvent}))
}
