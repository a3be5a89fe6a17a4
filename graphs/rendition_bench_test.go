package graphs

import (
	"fmt"
	"strings"
	"testing"
)

// noop10k is the graph of internal/cluster's BenchmarkDispatch10k
// (noopGraph): 10,000 noop nodes in 100 chains of 100, about 815 KB of YAML.
func noop10k() []byte {
	var b strings.Builder
	b.WriteString("version: 1\nname: noop10k\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range 10_000 {
		if i < 100 {
			fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core}\n", i)
			continue
		}
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core, depends_on: [n%d]}\n", i, i-100)
	}
	return []byte(b.String())
}

// BenchmarkNoop10kParseYAML: what an agent does today with the source.
func BenchmarkNoop10kParseYAML(b *testing.B) {
	src := noop10k()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("noop10k.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoop10kRendition: what the coordinator does once per graph.
func BenchmarkNoop10kRendition(b *testing.B) {
	src := noop10k()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Rendition("noop10k.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoop10kRenditionLibrary: the same through the YAML library
// (the way of files whose entries are not one-line flow mappings).
func BenchmarkNoop10kRenditionLibrary(b *testing.B) {
	src := noop10k()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := slowRendition("noop10k.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoop10kParseJSON and BenchmarkNoop10kParseRendition: what an
// agent does with the rendition (copying its strings, or pointing into it).
func BenchmarkNoop10kParseJSON(b *testing.B) {
	r, err := Rendition("noop10k.yaml", noop10k())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(r)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON("noop10k.yaml", r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNoop10kParseRendition(b *testing.B) {
	src := noop10k()
	r, err := Rendition("noop10k.yaml", src)
	if err != nil {
		b.Fatal(err)
	}
	g, _ := Parse("noop10k.yaml", src)
	hash := g.Hash()
	b.SetBytes(int64(len(r)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRendition("noop10k.yaml", r, hash); err != nil {
			b.Fatal(err)
		}
	}
}
