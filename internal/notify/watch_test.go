package notify

import (
	"strings"
	"testing"

	"github.com/reprise-si/reprise/graphs"
)

// A graph file whose notify section the watcher skips reading has none:
// mayNotify is false only when the key is nowhere in the file and no escape
// could spell it.
func TestMayNotify(t *testing.T) {
	tests := []struct {
		name, file string
		want       bool
	}{
		{"yaml", "version: 1\nname: g\nnotify:\n  - {name: ops, command: [\"true\"], events: [run-finished]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n", true},
		{"json", `{"version":1,"name":"g","notify":[{"name":"ops","command":["true"],"events":["run-finished"]}],"nodes":[{"id":"a","kind":"data","plugin":"noop"}]}`, true},
		{"json escaped key", `{"version":1,"name":"g","\u006eotify":[{"name":"ops","command":["true"],"events":["run-finished"]}],"nodes":[{"id":"a","kind":"data","plugin":"noop"}]}`, true},
		{"yaml escaped key", "version: 1\nname: g\n\"\\x6eotify\":\n  - {name: ops, command: [\"true\"], events: [run-finished]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n", true},
		{"none", `{"version":1,"name":"g","nodes":[{"id":"a","kind":"data","plugin":"noop"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mayNotify([]byte(tt.file)); got != tt.want {
				t.Errorf("mayNotify = %v, want %v", got, tt.want)
			}
			name := "g.yaml"
			if strings.HasPrefix(tt.file, "{") {
				name = "g.json"
			}
			g, err := graphs.Parse(name, []byte(tt.file))
			if err != nil {
				t.Skipf("the graph parser refuses this spelling: %v", err)
			}
			if has := len(g.Notify) > 0; has && !mayNotify([]byte(tt.file)) {
				t.Errorf("the graph has %d notify targets but mayNotify says none", len(g.Notify))
			}
		})
	}
}
