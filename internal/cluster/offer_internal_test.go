package cluster

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/step"
)

// TestOfferBatchValue: a batch's value, assembled from its head's JSON and
// its items' without parsing them again, is the JSON of the OfferBatch it
// stands for, whatever its strings hold; jsonSize is its length, and bound
// is at least what its transaction sends, packed or not.
func TestOfferBatchValue(t *testing.T) {
	heads := []offerHead{
		{By: "coord"},
		{By: "host:12", Graph: "3f2a", GraphFile: `/srv/graphs/"odd" <&> é\path.yaml`, Run: "20261202T103000-ab12", WorkDir: "/srv/graphs\n"},
	}
	for _, h := range heads {
		for _, n := range []int{0, 1, 3, 40} {
			b := &offerBatch{h: h, la: &liveAgent{key: "/p/agents/a0"}, g: offerGroup{key: "/p/work/runs/r/o/a0/coord.1"}}
			b.head, _ = json.Marshal(h)
			want := OfferBatch{By: h.By, Graph: h.Graph, GraphFile: h.GraphFile, Run: h.Run, WorkDir: h.WorkDir, Items: []Item{}}
			for i := range n {
				it := Item{Call: fmt.Sprintf("coord-%d", i), Op: opRestore, Zone: "core",
					Req: step.Request{NodeID: fmt.Sprintf("n%d", i), Kind: "application", Plugin: "noop", Attempt: 1,
						Inputs: map[string]map[string]string{"dep": {"out": strings.Repeat("<x>\"", i)}}, Mode: step.ModeNormal}}
				js, _ := json.Marshal(it)
				b.items = append(b.items, js)
				want.Items = append(want.Items, it)
			}
			v := b.value()
			if !json.Valid(v) {
				t.Fatalf("head %+v, %d items: not JSON: %s", h, n, v)
			}
			if len(v) != b.jsonSize() {
				t.Errorf("head %+v, %d items: jsonSize %d, value %d bytes", h, n, b.jsonSize(), len(v))
			}
			var got OfferBatch
			if err := json.Unmarshal(v, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("head %+v, %d items: read back %+v, want %+v", h, n, got, want)
			}
			plain, _ := json.Marshal(struct {
				offerHead
				Items []json.RawMessage `json:"items"`
			}{h, rawItems(b.items)})
			if string(plain) != string(v) {
				t.Errorf("head %+v, %d items: %s, json.Marshal gives %s", h, n, v, plain)
			}
			if _, g := b.encode(); g.size > b.bound() {
				t.Errorf("head %+v, %d items: sends %d bytes, over its bound %d", h, n, g.size, b.bound())
			}
		}
	}
}

func rawItems(items [][]byte) []json.RawMessage {
	out := []json.RawMessage{}
	for _, it := range items {
		out = append(out, it)
	}
	return out
}

// TestItemReadsEveryField: an item written with every field of its
// request, zero ones included (as earlier versions wrote), reads as the
// same item written without its zero fields.
func TestItemReadsEveryField(t *testing.T) {
	full := `{"call":"c-1","op":"restore","zone":"core","req":{"RunID":"","NodeID":"n7","Kind":"application","Plugin":"noop","Attempt":1,"Config":null,"Inputs":{"n6":{"ip":"10.0.0.7"}},"Mode":"normal","WorkDir":"","Drill":false,"RestorePoint":null}}`
	var old Item
	if err := json.Unmarshal([]byte(full), &old); err != nil {
		t.Fatal(err)
	}
	short, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"RunID"`, `"Config"`, `"WorkDir"`, `"Drill"`, `"RestorePoint"`} {
		if strings.Contains(string(short), f) {
			t.Errorf("%s written at its zero value: %s", f, short)
		}
	}
	var back Item
	if err := json.Unmarshal(short, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, old) {
		t.Errorf("read back %+v, want %+v", back, old)
	}
}
