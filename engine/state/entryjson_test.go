package state

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// The hand-written encoder must write exactly what encoding/json writes.
func TestEntryJSON(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 20, 35, 12, 123000000, time.UTC)
	tests := []struct {
		name string
		e    Entry
	}{
		{"minimal", Entry{Seq: 1, Type: "run-created"}},
		{"full", Entry{Seq: 42, Time: t0, Type: "node-failed", NodeID: "pacs", State: NodeFailed, Attempt: -3,
			Message: "exit 1", By: "engine", Data: map[string]string{"b": "2", "a": "1", "": ""},
			Record: "0123456789abcdef0123456789abcdef", Prev: "ab", Hash: "cd"}},
		{"escapes", Entry{Type: "x", Message: "quote \" backslash \\ <script>&</script> \n\r\t\x00\x1f\x7f é 中 \u2028\u2029 \xff\xfe end"}},
		{"zone", Entry{Type: "x", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))}},
		{"whole second", Entry{Type: "x", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(&tt.e)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendEntryJSON(nil, &tt.e); !bytes.Equal(got, want) {
				t.Errorf("appendEntryJSON =\n%s\nencoding/json =\n%s", got, want)
			}
		})
	}
}

func FuzzEntryJSON(f *testing.F) {
	f.Add(uint64(1), int64(0), "node-started", "ad", "running", 1, "msg", "me", "k", "v", "p")
	f.Add(uint64(9), int64(1e18), "<&>", "\u2028", "", -1, "\xff", "\"\\", "\x00", "é", "")
	f.Fuzz(func(t *testing.T, seq uint64, nanos int64, typ, node, st string, attempt int, msg, by, k, v, prev string) {
		e := Entry{Seq: seq, Type: EntryType(typ), NodeID: node, State: NodeState(st), Attempt: attempt,
			Message: msg, By: by, Data: map[string]string{k: v}, Record: k, Prev: prev}
		if nanos != 0 {
			e.Time = time.Unix(0, nanos).UTC()
		}
		want, err := json.Marshal(&e)
		if err != nil {
			return // a time json refuses (year outside 0–9999)
		}
		if got := appendEntryJSON(nil, &e); !bytes.Equal(got, want) {
			t.Fatalf("appendEntryJSON =\n%q\nencoding/json =\n%q", got, want)
		}
	})
}

// BenchmarkEntryJSON compares the hand-written entry encoder with
// encoding/json on a typical entry.
func BenchmarkEntryJSON(b *testing.B) {
	e := Entry{Seq: 12345, Time: time.Now().UTC(), Type: "node-succeeded", NodeID: "app-000123", State: NodeSucceeded,
		Attempt: 1, Message: "restore step finished", Prev: "74cc90bbe074cd9cb66e014c8cc5f3d570cb7930903ec1cccf38c6d5fa35678e"}
	b.Run("hand-written", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		for range b.N {
			buf = appendEntryJSON(buf[:0], &e)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for range b.N {
			_, _ = json.Marshal(&e)
		}
	})
}
