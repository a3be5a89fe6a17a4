package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
)

// duplicateKeys returns the keys that appear more than once at the top
// level of one JSON object.
func duplicateKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		k := tok.(string)
		if seen[k] {
			dups = append(dups, k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return dups
}

// TestJSONLogKeysUnique: no line of the JSON log has a key twice, whether
// the repeat comes from the logger's context (pid, run), the encoder's own
// keys (msg, level, time) or a plugin's line forwarded with its own keys.
func TestJSONLogKeysUnique(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "s.db")
	log, closeLog, err := openLog(statePath)
	if err != nil {
		t.Fatal(err)
	}
	log = withLiveRun(log, func() string { return "r1" })
	log.Info("approved", zap.String("run", "r1"), zap.String("node", "gate"))
	log.With(zap.String("run", "r1")).Info("plugin line", zap.Int("pid", 4242), zap.String("msg", "its own"),
		zap.String("level", "info"), zap.String("node", "a"), zap.String("node", "a"))
	log.With(zap.String("node", "a")).With(zap.String("node", "b")).Info("nested")
	closeLog()
	f, err := os.Open(logPath(statePath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines++
		if dups := duplicateKeys(t, sc.Bytes()); len(dups) > 0 {
			t.Errorf("log line has %v twice: %s", dups, sc.Bytes())
		}
	}
	if lines != 3 {
		t.Errorf("%d lines; want 3", lines)
	}
}
