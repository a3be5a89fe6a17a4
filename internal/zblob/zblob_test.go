package zblob

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"
)

// journalLike is n journal entries as the engine seals them: JSON with a
// time, a node, a message and two hashes (the least compressible part).
func journalLike(n int) []byte {
	var b bytes.Buffer
	t := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	prev := ""
	for i := range n {
		sum := sha256.Sum256(fmt.Appendf(nil, "%d%s", i, prev))
		h := hex.EncodeToString(sum[:])
		fmt.Fprintf(&b, `{"seq":%d,"time":%q,"type":"node-succeeded","node":"n%d","attempt":1,"msg":"restored by noop in 0s","data":{"agent":"a%d","claim":"%d"},"prev":%q,"hash":%q}`,
			i+2, t.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i, i%3, 1000+i, prev, h)
		prev = h
	}
	return b.Bytes()
}

func TestPackRoundTrip(t *testing.T) {
	for _, n := range []int{2, 10, 200} {
		data := journalLike(n)
		z, ok := Pack([]byte("x"), data)
		if !ok {
			t.Fatalf("%d entries (%d bytes): not packed", n, len(data))
		}
		if z[0] != 'x' {
			t.Fatalf("dst not kept: %q", z[:1])
		}
		got, err := Unpack(z[1:], len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d entries: round trip: %v", n, err)
		}
		t.Logf("%d entries: %d → %d bytes (%.1fx)", n, len(data), len(z)-1, float64(len(data))/float64(len(z)-1))
		if n == 200 && len(z) > len(data)/3 {
			t.Errorf("200 entries: %d → %d bytes, want at least 3 times smaller", len(data), len(z))
		}
	}
}

func TestPackDeclines(t *testing.T) {
	small := journalLike(5)[:MinSize-1]
	if z, ok := Pack(nil, small); ok || len(z) != 0 {
		t.Errorf("%d bytes packed (%d), want left plain", len(small), len(z))
	}
	random := make([]byte, 64<<10)
	rand.Read(random)
	if z, ok := Pack([]byte("ab"), random); ok || string(z) != "ab" {
		t.Errorf("random bytes packed (%d bytes), want left plain and dst as it was", len(z))
	}
}

func TestUnpackBounds(t *testing.T) {
	data := bytes.Repeat([]byte("a"), 1<<20)
	z, ok := Pack(nil, data)
	if !ok {
		t.Fatal("not packed")
	}
	if _, err := Unpack(z, 1<<20-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1 MiB frame with at most 1 MiB-1: %v, want ErrTooLarge", err)
	}
	if got, err := Unpack(z, 1<<20); err != nil || len(got) != 1<<20 {
		t.Errorf("1 MiB frame with at most 1 MiB: %d bytes, %v", len(got), err)
	}
	for _, bad := range [][]byte{nil, {0x28}, []byte("not a frame at all"), z[:len(z)/2]} {
		if _, err := Unpack(bad, 1<<20); err == nil {
			t.Errorf("Unpack(%q…): no error", bad[:min(len(bad), 8)])
		}
	}
	// A frame that hides its size is refused (Pack's always say it).
	if _, err := Unpack(append([]byte{}, 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00), 100); err == nil {
		t.Error("frame without its size: no error")
	}
}

func FuzzUnpack(f *testing.F) {
	z, _ := Pack(nil, journalLike(20))
	f.Add(z)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, z []byte) {
		out, err := Unpack(z, 1<<16)
		if err == nil && len(out) > 1<<16 {
			t.Fatalf("%d bytes returned, at most %d allowed", len(out), 1<<16)
		}
	})
}

// BenchmarkPack compresses a journal block of 200 entries (a level of a
// 10,000-node run: 100 steps started, 100 succeeded), with zstd as Pack
// does and with DEFLATE at its fastest level for comparison.
func BenchmarkPack(b *testing.B) {
	data := journalLike(200)
	b.Run("zstd", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var z []byte
		for b.Loop() {
			z, _ = Pack(z[:0], data)
		}
		b.ReportMetric(float64(len(data))/float64(len(z)), "ratio")
	})
	b.Run("zstd-unpack", func(b *testing.B) {
		z, _ := Pack(nil, data)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Unpack(z, len(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("flate1", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestSpeed)
		for b.Loop() {
			buf.Reset()
			w.Reset(&buf)
			w.Write(data)
			w.Close()
		}
		b.ReportMetric(float64(len(data))/float64(buf.Len()), "ratio")
	})
}
