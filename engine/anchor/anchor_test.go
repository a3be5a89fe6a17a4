package anchor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
)

func journalOf(entries ...state.Entry) func(string, uint64, func(state.Entry) error) error {
	return func(_ string, _ uint64, fn func(state.Entry) error) error {
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestCheck: anchors agree with the journal they were taken from; a
// rewritten entry, a shortened journal and (with a key) a forged anchor are
// each named.
func TestCheck(t *testing.T) {
	key := []byte("k")
	j := journalOf(state.Entry{Seq: 1, Hash: "h1"}, state.Entry{Seq: 2, Hash: "h2"}, state.Entry{Seq: 3, Hash: "h3"})
	good := []Anchor{New("", "r", 2, "h2", key), New("", "r", 3, "h3", key), New("", "other", 9, "x", key)}
	tests := []struct {
		name    string
		anchors []Anchor
		key     []byte
		want    string // "" OK
	}{
		{"agree", good, key, ""},
		{"no key needed", good, nil, ""},
		{"rewritten", []Anchor{New("", "r", 2, "old", key)}, key, "rewritten"},
		{"entries removed", []Anchor{New("", "r", 4, "h4", key)}, key, "removed"},
		{"forged without the key", []Anchor{New("", "r", 2, "h2", nil)}, key, "no valid MAC"},
		{"forged with another key", []Anchor{New("", "r", 2, "h2", []byte("x"))}, key, "no valid MAC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Check(tt.anchors, "r", tt.key, j)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" && !rep.OK || tt.want != "" && (rep.OK || !strings.Contains(rep.Problem, tt.want)) {
				t.Errorf("Check = %+v, want %q", rep, tt.want)
			}
		})
	}
}

// TestFileRoundTrip: anchors appended to a file are read back, among the
// other lines of a JSON log; a symlink planted as the file is refused.
func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "anchors")
	if err := os.WriteFile(p, []byte(`{"level":"info","msg":"step output"}`+"\n"+strings.Repeat("x", 200000)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := Write(context.Background(), p, New("/s", "r", uint64(i+1), "h", nil)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Read(context.Background(), p)
	if err != nil || len(got) != 3 || got[2].Seq != 3 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(context.Background(), link, New("/s", "r", 9, "h", nil)); err == nil {
		t.Error("Write followed a symlink")
	}
}
