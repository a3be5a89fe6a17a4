package main

import (
	"fmt"
	"runtime/debug"

	"github.com/reprise-si/reprise/internal/cluster"
)

// versionString says which reprise this is, from the build info the Go
// toolchain embeds: the module version, the commit it was built from (with
// "+dirty" for uncommitted changes), the commit's time and the Go version;
// then the cluster protocol it speaks (cluster.ProtocolVersion), which
// coordinators and agents must share: an operator compares it across
// builds before mixing them.
func versionString() string {
	v := "unknown (no build info)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = formatVersion(bi)
	}
	return fmt.Sprintf("%s, cluster protocol %d", v, cluster.ProtocolVersion)
}

func formatVersion(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return fmt.Sprintf("%s, commit unknown (built outside a git checkout or with -buildvcs=false), %s", version, bi.GoVersion)
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	if at != "" {
		rev += " (" + at + ")"
	}
	return fmt.Sprintf("%s, commit %s, %s", version, rev, bi.GoVersion)
}
