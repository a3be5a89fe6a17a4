package graphs

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// slowRendition is Rendition without its fast way.
func slowRendition(file string, src []byte) ([]byte, error) {
	renditionFastOn = false
	defer func() { renditionFastOn = true }()
	return Rendition(file, src)
}

// smallChunks makes splitYAML cut even a small file (renditionFast goes
// by its layout).
func smallChunks(t testing.TB) {
	old := yamlChunkBytes
	yamlChunkBytes = 1
	t.Cleanup(func() { yamlChunkBytes = old })
}

var fastLines = []string{
	`{id: n0, kind: application, plugin: noop, zone: core}`,
	`{id: n1, kind: application, plugin: noop, zone: core, depends_on: [n0], with: {delay: 1ms}}`,
	`{ id: n2 ,  kind: data, plugin: noop, title: Two words here, owner: "Dr. A: B, {c} #d", contact: '+33 1 23 45', retries: 3}`,
	`{id: n3, kind: data, plugin: noop, with: {a: [1, 0, 123456789012345678, true, False, NULL, null, x.y/z-w_1, "é ü 🦀", []], b: {}, c: {d: {e: [f]}}}}`,
	`{id: n4, kind: data, plugin: noop, with: {k: v, k: w}}`,
	`{}`,
	`{id: n5, kind: data, plugin: noop, title: a -b . c}`,
}

// TestRenditionFastSame: the fast way takes the usual one-line entries and
// writes what the usual way writes, byte for byte; it leaves the rest to
// the usual way.
func TestRenditionFastSame(t *testing.T) {
	smallChunks(t)
	var b strings.Builder
	b.WriteString("# a graph\nversion: 1\nname: fast\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i, l := range fastLines {
		b.WriteString("  - " + l + "  \n")
		if i == 2 {
			b.WriteString("\n  # a comment\n")
		}
	}
	b.WriteString("defaults: {retries: 1}\n")
	src := []byte(b.String())
	fast, nslow, ok := renditionLines("f.yaml", src)
	if !ok || nslow != 0 {
		t.Fatalf("the fast way does not take the usual entries (%v, %d read by the YAML library)", ok, nslow)
	}
	slow, err := slowRendition("f.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fast, slow) {
		t.Fatalf("fast:\n%s\nusual:\n%s", fast, slow)
	}
	big := noop10k()
	fast, ok = renditionFast("noop10k.yaml", big)
	if slow, err := slowRendition("noop10k.yaml", big); !ok || err != nil || !bytes.Equal(fast, slow) {
		t.Fatalf("noop10k: fast way %v, usual way %v, same %v", ok, err, bytes.Equal(fast, slow))
	}
	for _, l := range []string{
		`{id: a, with: {x: -1}}`, `{id: a, with: {x: 1.5}}`, `{id: a, with: {x: 2024-01-01}}`, `{id: a, with: {x: 0x1F}}`,
		`{id: a, with: {x: 01}}`, `{id: a, with: {x: yes}} # c`, `{id: a, with: {x: "a\"b"}}`, `{id: a, with: {x: 'it''s'}}`,
		`{id: a, with: {x: &x y, z: *x}}`, `{id: a, with: {x: ~}}`, `{id: a, with: {x: a:b}}`, `{id: a, with: {"x":1}}`,
		`{id: a, with: {1: x}}`, `{id: a, with: {true: x}}`, "{id: a,\ttitle: b}", `{id: a, with: {x: .5}}`,
		`{id: a, <<: {b: c}}`, `{id: a, with: {x: 1234567890123456789}}`, `{id: a, with: {x: "a` + "\u2028" + `b"}}`,
		`{id: a, with: [x]`, `{id: a,}`, `{id: a, with: !!str x}`,
	} {
		src := []byte("version: 1\nnodes:\n  - {id: z}\n  - " + l + "\n")
		fast, nslow, ok := renditionLines("f.yaml", src)
		slow, err := slowRendition("f.yaml", src)
		if ok && (nslow != 1 || err != nil || !bytes.Equal(fast, slow)) {
			t.Errorf("%s: the fast way wrote (%d lines read by the library)\n%s\nthe usual way (%v)\n%s", l, nslow, fast, err, slow)
		}
	}
	for _, l := range []string{"{id: a, with: *x}", "{id: a, with: {x: 1,\n    y: 2}}"} {
		src := []byte("version: 1\nnodes:\n  - {id: z, with: &x {a: 1}}\n  - " + l + "\n")
		if out, ok := renditionFast("f.yaml", src); ok {
			t.Errorf("the fast way took %q: %s", l, out)
		}
	}
	multi := []byte("version: 1\nnodes:\n  - {id: z}\n  - id: a\n    kind: data\n")
	if _, ok := renditionFast("f.yaml", multi); ok {
		t.Error("the fast way took a block mapping")
	}
}

// FuzzRenditionFast: whatever entry the fast way takes, the usual way
// reads and writes alike.
func FuzzRenditionFast(f *testing.F) {
	for _, l := range fastLines {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		smallChunks(t)
		if strings.ContainsAny(line, "\n\r") || !utf8.ValidString(line) { // Rendition checks UTF-8 first
			return
		}
		src := []byte("version: 1\nnodes:\n  - {id: z, kind: data}\n  - " + line + "\nname: x\n")
		fast, ok := renditionFast("f.yaml", src)
		if !ok {
			return
		}
		slow, err := slowRendition("f.yaml", src)
		if err != nil {
			t.Fatalf("the fast way took %q, the usual way refuses it: %v", line, err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("%q:\nfast:  %s\nusual: %s", line, fast, slow)
		}
	})
}
