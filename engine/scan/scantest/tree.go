// Package scantest generates folders of mixed files for the scanner's
// benchmarks: text, compressed-looking and image-looking files, and large
// low-entropy binaries, in proportions close to a file server's.
package scantest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// MixedTree writes files under dir until they hold about total bytes, in
// folders of 50 files, and returns how many files and bytes it wrote. The
// same seed gives the same tree.
func MixedTree(dir string, total int64, seed uint64) (files int, bytes int64, err error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	textBlock := makeText(1 << 20)
	random := make([]byte, 16<<20)
	fillRandom(rng, random)
	for bytes < total {
		var data []byte
		var ext string
		switch k := rng.IntN(10); {
		case k < 5: // logs, CSV exports, documents: 2 KiB – 256 KiB of text
			n := 2<<10 + rng.IntN(254<<10)
			off := rng.IntN(len(textBlock) - n)
			data, ext = textBlock[off:off+n], ".txt"
		case k < 7: // archives: a gzip header then compressed (random) bytes, 64 KiB – 4 MiB
			data, ext = withHead([]byte{0x1f, 0x8b, 8, 0}, randomSlice(rng, random, 64<<10+rng.IntN(4<<20-64<<10))), ".gz"
		case k < 9: // images: a JPEG header then random bytes, 64 KiB – 2 MiB
			data, ext = withHead([]byte{0xff, 0xd8, 0xff, 0xe0}, randomSlice(rng, random, 64<<10+rng.IntN(2<<20-64<<10))), ".jpg"
		default: // database files: repeated records, 1 – 16 MiB
			n := 1<<20 + rng.IntN(15<<20)
			data, ext = records(n, rng), ".db"
		}
		if bytes+int64(len(data)) > total && files > 0 {
			data = data[:total-bytes]
		}
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", files/50))
		if files%50 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return files, bytes, err
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d%s", files, ext)), data, 0o644); err != nil {
			return files, bytes, err
		}
		files++
		bytes += int64(len(data))
	}
	return files, bytes, nil
}

func makeText(n int) []byte {
	b := make([]byte, 0, n+128)
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "%06d;patient %d;ward %d;result %d mmol/L;ok\n", i, i*7919%100000, i%23, i*31%500)
	}
	return b[:n]
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func randomSlice(rng *rand.Rand, random []byte, n int) []byte {
	off := rng.IntN(len(random) - n)
	return random[off : off+n]
}

func withHead(head, body []byte) []byte {
	out := make([]byte, 0, len(head)+len(body))
	return append(append(out, head...), body...)
}

func records(n int, rng *rand.Rand) []byte {
	rec := make([]byte, 256)
	for i := range rec {
		rec[i] = byte(rng.IntN(16))
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, rec...)
	}
	return out[:n]
}
