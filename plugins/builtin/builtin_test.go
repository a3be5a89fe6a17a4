package builtin

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/graphs"
)

func TestPluginNames(t *testing.T) {
	if !slices.Equal(Names, graphs.BuiltinPlugins) {
		t.Errorf("builtin.Names = %q, graphs.BuiltinPlugins = %q: keep them equal", Names, graphs.BuiltinPlugins)
	}
	for _, name := range Names {
		p, err := Plugin(name)
		if err != nil {
			t.Fatalf("Plugin(%q): %v", name, err)
		}
		info, err := p.Describe(context.Background())
		if err != nil || info.Name != name || info.Version != Version || len(info.Fields) == 0 {
			t.Errorf("Describe(%q) = %+v, %v", name, info, err)
		}
	}
	if _, err := Plugin("ssh"); err == nil || !strings.Contains(err.Error(), "exec, http, manual, noop") {
		t.Errorf("Plugin(ssh) err = %v", err)
	}
	if err := Serve("ssh"); err == nil {
		t.Error("Serve(ssh): want an error")
	}
}

func TestReadOutputs(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		want     map[string]string
		wantWarn int
	}{
		{"plain", "a=1\nb=x=y\n", map[string]string{"a": "1", "b": "x=y"}, 0},
		{"comments, blanks and CRLF", "# note\n\nurl=http://h\r\n", map[string]string{"url": "http://h"}, 0},
		{"bad lines warn", "novalue\n=x\nk=v", map[string]string{"k": "v"}, 2},
		{"last one wins", "k=1\nk=2\n", map[string]string{"k": "2"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, warns, _ := readOutputs(path)
			if !reflect.DeepEqual(got, tt.want) || len(warns) != tt.wantWarn {
				t.Errorf("readOutputs = %v, %q; want %v and %d warnings", got, warns, tt.want, tt.wantWarn)
			}
		})
	}
}
