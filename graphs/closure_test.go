package graphs

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestClosures(t *testing.T) {
	g := mustLoad(t, "testdata/small.yaml")
	a := Analyze(g)
	idx := func(ids ...string) []int {
		out := make([]int, len(ids))
		for k, id := range ids {
			i, ok := g.Index(id)
			if !ok {
				t.Fatalf("no node %q", id)
			}
			out[k] = i
		}
		return out
	}
	names := func(set []bool) string { return strings.Join(ids(g, Members(set)), ",") }
	tests := []struct {
		name string
		got  []bool
		want string
	}{
		{"ancestors of pacs", a.Ancestors(idx("pacs")...), "network,ad,san,pacs"},
		{"ancestors of two", a.Ancestors(idx("ris", "san")...), "network,ad,san,ris"},
		{"ancestors of a root", a.Ancestors(idx("network")...), "network"},
		{"ancestors of none", a.Ancestors(), ""},
		{"descendants of ad", a.Descendants(idx("ad")...), "ad,ris,pacs,ris-to-pacs,pacs-reentry"},
		{"descendants of a leaf", a.Descendants(idx("pacs-reentry")...), "pacs-reentry"},
		{"descendants out of range", a.Descendants(-1, len(g.Nodes)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(tt.got); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestReachThrough(t *testing.T) {
	// 0 -> 1 -> 2 -> 3, 0 -> 4 -> 3: a walk that stops at 1 still reaches
	// 1 and, through 4, reaches 3, but never 2.
	adj := [][]int{{1, 4}, {2}, {3}, nil, {3}}
	var called []int
	got := Reach(adj, []int{0}, func(v int) bool {
		called = append(called, v)
		return v != 1
	})
	if want := []bool{true, true, false, true, true}; !reflect.DeepEqual(got, want) {
		t.Errorf("Reach = %v, want %v", got, want)
	}
	if fmt.Sprint(called) != "[1 4 3]" {
		t.Errorf("through called for %v, want [1 4 3] (each reached node once, depth first)", called)
	}
}

func TestSubsetKeepsAncestors(t *testing.T) {
	g := mustLoad(t, "testdata/small.yaml")
	sub, err := g.Subset([]string{"ris", "san"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range sub.Nodes {
		got = append(got, n.ID)
	}
	if strings.Join(got, ",") != "network,ad,san,ris" {
		t.Errorf("Subset(ris, san) = %v", got)
	}
}
