// Package sim is the simulated hospital of the reprise example: restore and
// check steps for infrastructure and application data, one small HTTP (and
// MLLP) service per application, and the interface, re-entry and
// reconnection checks. Every step reads or writes real files under the work
// folder and fails when what it finds is wrong.
//
// Everything listens on 127.0.0.1 only. Ports: HTTP at base+offset, MLLP at
// base+50+offset, base 17100 by default (HOSPITAL_PORT_BASE), so the
// example uses 127.0.0.1:17101–17169.
package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// App is one simulated application.
type App struct {
	ID     string
	Offset int    // port offset from the base
	Title  string // what it stands for
}

// Apps lists every simulated application, by port offset.
var Apps = []App{
	{"eai", 1, "interface engine"},
	{"identity", 2, "identity server (INS)"},
	{"gam", 3, "admissions (GAM)"},
	{"dpi", 4, "patient record (DPI)"},
	{"emergency", 5, "emergency department"},
	{"theatre", 6, "operating theatre"},
	{"icu", 7, "intensive care"},
	{"maternity", 8, "maternity"},
	{"lis", 9, "laboratory (LIS)"},
	{"lab-middleware", 10, "lab middleware"},
	{"pacs", 11, "imaging archive (PACS)"},
	{"ris", 12, "radiology (RIS)"},
	{"pharmacy", 13, "pharmacy"},
	{"blood-bank", 14, "blood bank link"},
	{"sterilisation", 15, "sterilisation"},
	{"pmsi", 16, "activity coding (PMSI)"},
	{"billing", 17, "billing"},
	{"finance", 18, "finance"},
	{"hr", 19, "HR and payroll"},
}

// DefaultPortBase is the port base when HOSPITAL_PORT_BASE is unset.
const DefaultPortBase = 17100

// Env is where the simulator finds its folders and ports. Relative folders
// are relative to the current directory (the graph file's folder when run
// by reprise's exec plugin).
type Env struct {
	Work     string // HOSPITAL_WORK, default "work"
	Backups  string // HOSPITAL_BACKUPS, default "backups"
	Seed     string // HOSPITAL_SEED, default "seed"
	PortBase int    // HOSPITAL_PORT_BASE, default 17100
}

// EnvFromOS reads the HOSPITAL_* variables.
func EnvFromOS() (Env, error) {
	e := Env{Work: "work", Backups: "backups", Seed: "seed", PortBase: DefaultPortBase}
	if v := os.Getenv("HOSPITAL_WORK"); v != "" {
		e.Work = v
	}
	if v := os.Getenv("HOSPITAL_BACKUPS"); v != "" {
		e.Backups = v
	}
	if v := os.Getenv("HOSPITAL_SEED"); v != "" {
		e.Seed = v
	}
	if v := os.Getenv("HOSPITAL_PORT_BASE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1024 || n > 65535-100 {
			return e, fmt.Errorf("HOSPITAL_PORT_BASE %q: want a number from 1024 to %d", v, 65535-100)
		}
		e.PortBase = n
	}
	return e, nil
}

// Data is the restored copy of archive name.
func (e Env) Data(name string) string { return filepath.Join(e.Work, "data", name) }

// StateFile is where a service journals the rows written to it at run time.
func (e Env) StateFile(app string) string { return filepath.Join(e.Work, "state", app+".jsonl") }

// PidFile is where a started service's pid is recorded.
func (e Env) PidFile(app string) string { return filepath.Join(e.Work, "pids", app+".pid") }

// LogFile is a service's log.
func (e Env) LogFile(app string) string { return filepath.Join(e.Work, "logs", app+".log") }

// Ledger is the file every action step appends `NODE ATTEMPT` to.
func (e Env) Ledger() string { return filepath.Join(e.Work, "ledger") }

// FindApp returns the app with id.
func FindApp(id string) (App, error) {
	for _, a := range Apps {
		if a.ID == id {
			return a, nil
		}
	}
	ids := make([]string, len(Apps))
	for i, a := range Apps {
		ids[i] = a.ID
	}
	sort.Strings(ids)
	return App{}, fmt.Errorf("unknown application %q (want one of %v)", id, ids)
}

// HTTPAddr is the app's HTTP listen address.
func (e Env) HTTPAddr(a App) string {
	return fmt.Sprintf("127.0.0.1:%d", e.PortBase+a.Offset)
}

// MLLPAddr is the app's MLLP listen address.
func (e Env) MLLPAddr(a App) string {
	return fmt.Sprintf("127.0.0.1:%d", e.PortBase+50+a.Offset)
}

// URL is the app's base URL.
func (e Env) URL(a App) string { return "http://" + e.HTTPAddr(a) }
