package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestNodeCodec(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 20, 35, 12, 123456789, time.UTC)
	tests := []struct {
		name string
		n    NodeRecord
	}{
		{"minimal", NodeRecord{ID: "ad"}},
		{"pending", NodeRecord{ID: "ad", State: NodePending}},
		{"unknown state", NodeRecord{ID: "ad", State: "exotic"}},
		{"before 1970", NodeRecord{ID: "ad", Started: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)}},
		{"full", NodeRecord{ID: "pacs", State: NodeFailed, Attempts: 3,
			History: []Attempt{
				{N: 1, Started: t0, Ended: t0.Add(time.Second), Result: NodeFailed, Error: "exit status 1"},
				{N: 2},
				{N: 3, Started: t0, Result: NodeRunning},
			},
			Started: t0, Ended: t0.Add(time.Hour), LastError: "exit status 1\nüñí\x00code",
			Outputs:    map[string]string{"host": "pacs1", "": "empty key", "port": ""},
			ApprovedBy: "alice", ApprovalComment: "checked by phone", ApprovedAt: t0,
			MarkedBy: "bob", MarkReason: "restored by hand"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := marshalNode(&tt.n)
			got, err := unmarshalNode(b)
			if err != nil || !reflect.DeepEqual(got, tt.n) {
				t.Errorf("round trip = %+v, %v\nwant %+v", got, err, tt.n)
			}
			js, _ := json.Marshal(&tt.n)
			if len(b) > len(js) {
				t.Errorf("binary %d bytes, JSON %d", len(b), len(js))
			}
			fromJSON, err := unmarshalNode(js)
			if err != nil || !reflect.DeepEqual(fromJSON, tt.n) {
				t.Errorf("JSON form = %+v, %v\nwant %+v", fromJSON, err, tt.n)
			}
			// Every truncation is an error, never a panic.
			for i := 1; i < len(b); i++ {
				if _, err := unmarshalNode(b[:i]); err == nil && !prefixIsRecord(b[:i]) {
					t.Errorf("truncated to %d bytes: no error", i)
				}
			}
		})
	}
}

// prefixIsRecord reports whether a truncated encoding happens to end on a
// field boundary (then it decodes to a record with fewer fields).
func prefixIsRecord(b []byte) bool {
	_, err := unmarshalNode(b)
	return err == nil
}

func TestNodeCodecErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"future format", []byte{2, tagID, 1, 'a'}},
		{"unknown tag", []byte{1, 99}},
		{"string past end", []byte{1, tagID, 50, 'a'}},
		{"bad varint", []byte{1, tagAttempts, 0x80, 0x80}},
		{"huge count", []byte{1, tagOutputs, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad attempt flags", []byte{1, tagHistory, 1, 0x40, 1}},
		{"bad json", []byte(`{"id":`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := unmarshalNode(tt.b); err == nil {
				t.Errorf("unmarshalNode(%x): no error", tt.b)
			} else if tt.name != "bad json" && !errors.Is(err, errBadRecord) {
				t.Errorf("err = %v, want errBadRecord", err)
			}
		})
	}
}

func FuzzNodeCodec(f *testing.F) {
	t0 := time.Date(2026, 11, 28, 20, 35, 12, 0, time.UTC)
	f.Add(marshalNode(&NodeRecord{ID: "a", State: NodeSucceeded, Attempts: 1, Started: t0,
		History: []Attempt{{N: 1, Started: t0, Ended: t0, Result: NodeSucceeded, Error: "x"}},
		Outputs: map[string]string{"k": "v"}, ApprovedBy: "me"}))
	f.Add([]byte(`{"id":"a","state":"failed"}`))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := unmarshalNode(b)
		if err != nil {
			return
		}
		// The binary form is a fixed point: what decodes re-encodes the same.
		b1 := marshalNode(&n)
		again, err := unmarshalNode(b1)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b2 := marshalNode(&again); !bytes.Equal(b1, b2) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b1, b2)
		}
	})
}

// BenchmarkNodeCodec compares the binary form of a typical finished node
// record with its JSON form.
func BenchmarkNodeCodec(b *testing.B) {
	t0 := time.Date(2026, 11, 28, 20, 35, 12, 123456789, time.UTC)
	n := NodeRecord{ID: "app-000123", State: NodeSucceeded, Attempts: 1,
		History: []Attempt{{N: 1, Started: t0, Ended: t0.Add(time.Second), Result: NodeSucceeded}},
		Started: t0, Ended: t0.Add(time.Second), Outputs: map[string]string{"host": "app-000123.chsf.local"}}
	bin := marshalNode(&n)
	js, _ := json.Marshal(&n)
	b.Run("decode-binary", func(b *testing.B) {
		b.ReportMetric(float64(len(bin)), "bytes")
		for range b.N {
			if _, err := unmarshalNode(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-json", func(b *testing.B) {
		b.ReportMetric(float64(len(js)), "bytes")
		for range b.N {
			var m NodeRecord
			if err := json.Unmarshal(js, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-binary", func(b *testing.B) {
		for range b.N {
			marshalNode(&n)
		}
	})
	b.Run("encode-json", func(b *testing.B) {
		for range b.N {
			_, _ = json.Marshal(&n)
		}
	})
}

// nodeState reads a record's state as unmarshalNode does, for records as
// marshalNode writes them and for others (JSON, damaged, truncated), and
// never panics.
func TestNodeState(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	inputs := [][]byte{
		[]byte(`{"id":"a","state":"failed"}`), {}, {nodeFormat}, {nodeFormat, tagID}, {nodeFormat, tagID, 5, 'a'},
		{nodeFormat, tagState, 7, 'r', 'u', 'n', 'n', 'i', 'n', 'g'}, {nodeFormat, tagID, 1, 'a', tagState, 3, 'n', 'e', 'w'},
		{nodeFormat, tagID, 1, 'a', tagState, 200, 'x'},
	}
	for _, st := range append(NodeStates, "newer") {
		b := marshalNode(&NodeRecord{ID: "app-1", State: st, Attempts: 2, Started: t0, LastError: "x"})
		inputs = append(inputs, b, b[:len(b)-3], b[:5])
	}
	for _, in := range inputs {
		got, gotErr := nodeState(in)
		n, wantErr := unmarshalNode(in)
		if wantErr == nil && (gotErr != nil || got != n.State) {
			t.Errorf("nodeState(%q) = %q, %v; unmarshalNode: %q, %v", in, got, gotErr, n.State, wantErr)
		}
	}
}
