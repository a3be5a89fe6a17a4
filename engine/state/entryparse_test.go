package state

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// sameEntry reports whether a and b are the same entry, their times the
// same instant in the same zone.
func sameEntry(a, b Entry) bool {
	if !a.Time.Equal(b.Time) || a.Time.Location().String() != b.Time.Location().String() {
		return false
	}
	_, ao := a.Time.Zone()
	_, bo := b.Time.Zone()
	a.Time, b.Time = time.Time{}, time.Time{}
	return ao == bo && reflect.DeepEqual(a, b)
}

// Entries as the store writes them are read by hand (the fast path), to
// the Entry they were written from.
func TestParseEntryCanonical(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 20, 35, 12, 123000000, time.UTC)
	tests := []struct {
		name string
		e    Entry
	}{
		{"minimal", Entry{Seq: 1, Type: EntryRunCreated}},
		{"node", Entry{Seq: 42, Time: t0, Type: EntrySucceeded, NodeID: "pacs", State: NodeSucceeded, Attempt: 2,
			Message: "restore step finished", Record: "0123456789abcdef0123456789abcdef",
			Prev: "74cc90bbe074cd9cb66e014c8cc5f3d570cb7930903ec1cccf38c6d5fa35678e", Hash: "cd"}},
		{"data", Entry{Seq: 7, Time: t0, Type: EntryGraphChanged, By: "ops", Data: map[string]string{"b": "2", "a": "", "": "x"}}},
		{"negative attempt", Entry{Seq: 3, Type: "custom-type", Attempt: -3, State: "newer-state"}},
		{"accents", Entry{Seq: 2, Time: t0, Type: EntryFailed, NodeID: "dpi-réa", Message: "échec: base 中 indisponible"}},
		{"zone", Entry{Seq: 5, Type: "x", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600))}},
		{"whole second", Entry{Seq: 9, Type: "x", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendEntryJSON(nil, &tt.e)
			var got Entry
			if !parseEntry(b, &got) {
				t.Fatalf("parseEntry refused the canonical %s", b)
			}
			if !sameEntry(got, tt.e) {
				t.Errorf("parseEntry(%s) =\n%+v\nwant\n%+v", b, got, tt.e)
			}
		})
	}
}

// Anything that is not the canonical form goes to encoding/json, which
// decodes it (or refuses it) as before.
func TestParseEntryFallsBack(t *testing.T) {
	for _, in := range []string{
		`{"seq":1,"type":"x","msg":"a \"quoted\" word","prev":"","hash":"h"}`, // an escape
		`{"seq":1,"type":"x","msg":"<b>","prev":"","hash":"h"}`,               // encoding/json escapes <
		`{"seq":1, "type":"x","prev":"","hash":"h"}`,                          // a space
		`{"seq":01,"type":"x","prev":"","hash":"h"}`,                          // a leading zero
		`{"seq":1,"type":"x","node":"","prev":"","hash":"h"}`,                 // an empty field left in
		`{"seq":1,"type":"x","attempt":0,"prev":"","hash":"h"}`,
		`{"seq":1,"type":"x","attempt":-0,"prev":"","hash":"h"}`,
		`{"seq":1,"type":"x","data":{"b":"1","a":"2"},"prev":"","hash":"h"}`, // unsorted
		`{"seq":1,"type":"x","data":{"a":"1","a":"2"},"prev":"","hash":"h"}`, // a key twice
		`{"seq":1,"type":"x","data":{},"prev":"","hash":"h"}`,
		`{"seq":1,"time":"0001-01-01T00:00:00Z","type":"x","prev":"","hash":"h"}`,
		`{"seq":1,"time":"2026-01-02T03:04:05.000Z","type":"x","prev":"","hash":"h"}`, // not as Go formats it
		`{"seq":1,"type":"x","state":"ok","node":"n","prev":"","hash":"h"}`,           // fields out of order
		`{"seq":1,"type":"x","node":"a","node":"b","prev":"","hash":"h"}`,
		`{"seq":1,"type":"x","prev":"","hash":"h"} `,
		`{"seq":1,"type":"x","prev":"","hash":"h"}{}`,
		`{"seq":1,"type":"x","msg":"` + "\xff" + `","prev":"","hash":"h"}`,
		`{"seq":1,"type":"x","msg":"` + "\u2028" + `","prev":"","hash":"h"}`,
		`{"seq":18446744073709551616,"type":"x","prev":"","hash":"h"}`,
		`{"seq":1,"type":"x","attempt":9223372036854775808,"prev":"","hash":"h"}`,
		`{"seq":1,"type":"x","prev":"","hash":"h"`,
		`{"seq":1,"type":"x","prev":"","hash":"h`,
	} {
		var fast Entry
		if parseEntry([]byte(in), &fast) {
			t.Errorf("parseEntry accepted the non-canonical %q", in)
		}
		var got, want Entry
		gotErr := decodeEntry([]byte(in), &got)
		wantErr := json.Unmarshal([]byte(in), &want)
		if (gotErr == nil) != (wantErr == nil) || !sameEntry(got, want) {
			t.Errorf("decodeEntry(%q) = %+v, %v; encoding/json: %+v, %v", in, got, gotErr, want, wantErr)
		}
	}
}

// FuzzParseEntry holds the hand-read entries equal to encoding/json's: for
// any bytes the fast path accepts, encoding/json decodes the same Entry.
func FuzzParseEntry(f *testing.F) {
	t0 := time.Date(2026, 11, 28, 20, 35, 12, 123000000, time.UTC)
	for _, e := range []Entry{
		{Seq: 1, Type: EntryRunCreated, Data: map[string]string{"nodes": "3"}},
		{Seq: 42, Time: t0, Type: EntrySucceeded, NodeID: "pacs", State: NodeSucceeded, Attempt: 2, Message: "ok",
			By: "me", Data: map[string]string{"a": "1", "b": ""}, Record: "0123", Prev: "ab", Hash: "cd"},
	} {
		f.Add(appendEntryJSON(nil, &e))
	}
	f.Add([]byte(`{"seq":1,"type":"x","data":{"a":"1","a":"2"},"prev":"","hash":"h"}`))
	f.Add([]byte(`{"seq":1,"time":"2026-01-02T03:04:05+01:00","type":"x","attempt":-1,"prev":"","hash":"h"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Entry
		if !parseEntry(b, &fast) {
			return
		}
		var want Entry
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("parseEntry accepted %q, encoding/json refuses it: %v", b, err)
		}
		if !sameEntry(fast, want) {
			t.Fatalf("parseEntry(%q) =\n%+v\nencoding/json:\n%+v", b, fast, want)
		}
	})
}

// BenchmarkDecodeEntry compares the hand-read path with encoding/json on a
// typical entry.
func BenchmarkDecodeEntry(b *testing.B) {
	e := Entry{Seq: 12345, Time: time.Now().UTC(), Type: EntrySucceeded, NodeID: "app-000123", State: NodeSucceeded,
		Attempt: 1, Message: "restore step finished", Record: "0123456789abcdef0123456789abcdef",
		Prev: "74cc90bbe074cd9cb66e014c8cc5f3d570cb7930903ec1cccf38c6d5fa35678e",
		Hash: "84cc90bbe074cd9cb66e014c8cc5f3d570cb7930903ec1cccf38c6d5fa35678e"}
	raw := appendEntryJSON(nil, &e)
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var got Entry
			if err := decodeEntry(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var got Entry
			if err := json.Unmarshal(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// parseUTC reads exactly the UTC times time.RFC3339Nano writes, as
// time.Parse reads them.
func TestParseUTC(t *testing.T) {
	for _, in := range []string{
		"2026-11-28T20:35:12.123Z", "2026-11-28T20:35:12Z", "2024-02-29T00:00:00.000000001Z", "0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999Z", "2026-12-31T23:59:59.5Z",
		"2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:00.10Z",
		"2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567891Z", "2026-01-01T00:00:00+01:00", "2026-01-01 00:00:00Z",
		"2026-1-01T00:00:00Z", "+026-01-01T00:00:00Z", "2026-01-01T00:00:00z",
	} {
		got, ok := parseUTC([]byte(in))
		want, err := time.Parse(time.RFC3339Nano, in)
		canonical := err == nil && want.Location() == time.UTC && want.Format(time.RFC3339Nano) == in
		if ok != canonical || (ok && !got.Equal(want)) {
			t.Errorf("parseUTC(%q) = %v, %v; time.Parse: %v, %v (canonical UTC: %v)", in, got, ok, want, err, canonical)
		}
	}
	for i := range 20000 {
		tm := time.Unix(0, int64(i)*7919*1e11+int64(i%1000)*1000003).UTC()
		s := tm.Format(time.RFC3339Nano)
		if got, ok := parseUTC([]byte(s)); !ok || !got.Equal(tm) || got.Location() != time.UTC {
			t.Fatalf("parseUTC(%q) = %v, %v", s, got, ok)
		}
	}
}
