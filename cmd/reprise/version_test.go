package main

import (
	"fmt"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/internal/cluster"
)

func TestFormatVersion(t *testing.T) {
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"stamped", debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "4dcf227729d0c10d44f63a5f3414dc749119eca6"}, {Key: "vcs.time", Value: "2026-12-01T21:19:53Z"}, {Key: "vcs.modified", Value: "false"}}},
			"v1.2.0, commit 4dcf227729d0 (2026-12-01T21:19:53Z), go1.26"},
		{"dirty", debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel), commit abc+dirty, go1.26"},
		{"unstamped", debug.BuildInfo{GoVersion: "go1.26"}, "(devel), commit unknown (built outside a git checkout or with -buildvcs=false), go1.26"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatVersion(&tc.bi); got != tc.want {
				t.Errorf("got %q want %q", got, tc.want)
			}
		})
	}
}

// TestCLIVersion: reprise --version says the version, the commit and the
// cluster protocol.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	out := d.mustRun(0, "--version")
	if !strings.HasPrefix(out, "reprise ") || !strings.Contains(out, "commit ") ||
		!strings.HasSuffix(out, fmt.Sprintf(", cluster protocol %d\n", cluster.ProtocolVersion)) {
		t.Errorf("--version: %q", out)
	}
}
