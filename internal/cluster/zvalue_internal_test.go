package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/zblob"
)

// offerJSON is the JSON of an offer batch of n noop calls, as a
// coordinator writes it (items compact).
func offerJSON(n int) []byte {
	b := OfferBatch{By: "coord", Graph: "3f2a", GraphFile: "/srv/graphs/hospital.yaml", Run: "20261202T103000-ab12", WorkDir: "/srv/graphs"}
	for i := range n {
		it := Item{Call: fmt.Sprintf("coord-1764671234567890123-%d", 1000+i), Op: opRestore, Zone: "core",
			Req: step.Request{NodeID: fmt.Sprintf("n%d", 100+i), Kind: "application", Plugin: "noop", Attempt: 1,
				Inputs: map[string]map[string]string{fmt.Sprintf("n%d", i): {}}, Mode: "restore"}}
		b.Items = append(b.Items, it)
	}
	js, _ := json.Marshal(b)
	return js
}

func resultsJSON(n int) []byte {
	var rs []Result
	for i := range n {
		rs = append(rs, Result{Call: fmt.Sprintf("coord-1764671234567890123-%d", 1000+i), ClaimRev: 4242, Agent: "a0",
			Op: opRestore, Status: step.Succeeded, Message: "noop", Node: fmt.Sprintf("n%d", 100+i)})
	}
	js, _ := json.Marshal(rs)
	return js
}

// TestPackValue: a batch of many calls is stored packed (the marker, then
// a zstd frame) and reads back the same; one of a single call stays plain
// JSON (too small to pack), as an older writer wrote every batch, and
// reads as before.
func TestPackValue(t *testing.T) {
	for _, n := range []int{1, 33, 300} {
		js := offerJSON(n)
		v := packValue(js)
		if packed := v[0] == valueMark; packed != (n > 1) {
			t.Errorf("offer batch of %d calls (%d bytes): packed %v", n, len(js), packed)
		}
		b, err := decodeOffer(v)
		if err != nil || len(b.Items) != n {
			t.Fatalf("offer batch of %d calls: %d items, %v", n, len(b.Items), err)
		}
		if it := b.Items[n-1]; it.By != "coord" || it.Req.RunID != "20261202T103000-ab12" || it.Req.WorkDir != "/srv/graphs" || it.Graph != "3f2a" {
			t.Errorf("item not given the batch's fields: %+v", it)
		}
		t.Logf("offer batch of %d calls: %d → %d bytes", n, len(js), len(v))

		js = resultsJSON(n)
		v = packValue(js)
		if packed := v[0] == valueMark; packed != (n > 3) {
			t.Errorf("result batch of %d results (%d bytes): packed %v", n, len(js), packed)
		}
		rs, err := decodeResults(v)
		if err != nil || len(rs) != n || rs[n-1].Node != fmt.Sprintf("n%d", 99+n) {
			t.Fatalf("result batch of %d: %d results, %v", n, len(rs), err)
		}
		t.Logf("result batch of %d results: %d → %d bytes", n, len(js), len(v))
	}
}

// TestUnpackDamaged: a packed value damaged (cut, bytes changed, a frame
// saying more than allowed, the marker alone) is an error, as damaged JSON
// is, never a panic; a plain value damaged is the same error as before.
func TestUnpackDamaged(t *testing.T) {
	v := packValue(offerJSON(50))
	if v[0] != valueMark {
		t.Fatal("not packed")
	}
	flipped := bytes.Clone(v)
	for i := 20; i < len(flipped); i += 7 {
		flipped[i] ^= 0x5a
	}
	big, _ := zblob.Pack([]byte{valueMark}, bytes.Repeat([]byte(" "), maxValueBytes+1))
	cases := map[string][]byte{
		"cut":           v[:len(v)/2],
		"flipped":       flipped,
		"marker alone":  {valueMark},
		"no frame":      append([]byte{valueMark}, "not zstd at all, just text"...),
		"too large":     big,
		"plain damaged": offerJSON(3)[:100],
	}
	for name, v := range cases {
		if _, err := decodeOffer(v); err == nil {
			t.Errorf("%s: offer batch read", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if rs, err := decodeResults(v); err == nil || len(rs) != 0 {
			t.Errorf("%s: result batch read: %d results, %v", name, len(rs), err)
		}
	}
}

// FuzzOfferValue: whatever an offer key holds, reading it is an error or
// an offer batch, never a panic; a batch read, written again (packed or
// not), reads back the same.
func FuzzOfferValue(f *testing.F) {
	f.Add(offerJSON(1))
	f.Add(offerJSON(5))
	f.Add(packValue(offerJSON(5)))
	f.Add(packValue(offerJSON(40)))
	f.Add(packValue(offerJSON(40))[:60])
	f.Add([]byte{valueMark})
	f.Add([]byte(`{"by":"c","items":[{"call":"x","req":{"NodeID":"n"}}]}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		b, err := decodeOffer(v)
		if err != nil {
			return
		}
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("batch read, not written again: %v", err)
		}
		b2, err := decodeOffer(packValue(js))
		if err != nil {
			t.Fatalf("batch written again, not read: %v", err)
		}
		js2, _ := json.Marshal(b2)
		if !bytes.Equal(js, js2) {
			t.Fatalf("batch changed when written again:\n%s\n%s", js, js2)
		}
	})
}
