package scan

import (
	"bytes"
	"math"
)

// entropy returns the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	// Four tables break the dependency between consecutive increments of
	// the same counter.
	var c [4][256]uint32
	i := 0
	for ; i+4 <= len(b); i += 4 {
		c[0][b[i]]++
		c[1][b[i+1]]++
		c[2][b[i+2]]++
		c[3][b[i+3]]++
	}
	for ; i < len(b); i++ {
		c[0][b[i]]++
	}
	n := float64(len(b))
	h := 0.0
	for v := 0; v < 256; v++ {
		k := c[0][v] + c[1][v] + c[2][v] + c[3][v]
		if k == 0 {
			continue
		}
		p := float64(k) / n
		h -= p * math.Log2(p)
	}
	return h
}

// magic is a known format whose content is compressed or packed, and so
// explains a high entropy.
type magic struct {
	name   string
	offset int
	sig    []byte
}

var magics = []magic{
	{"gzip", 0, []byte{0x1f, 0x8b}},
	{"zip", 0, []byte("PK\x03\x04")},
	{"zip", 0, []byte("PK\x05\x06")},
	{"zip", 0, []byte("PK\x07\x08")},
	{"png", 0, []byte("\x89PNG\r\n\x1a\n")},
	{"jpeg", 0, []byte{0xff, 0xd8, 0xff}},
	{"jpeg2000", 0, []byte("\x00\x00\x00\x0cjP  \r\n\x87\n")},
	{"gif", 0, []byte("GIF8")},
	{"pdf", 0, []byte("%PDF-")},
	{"zstd", 0, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"xz", 0, []byte("\xfd7zXZ\x00")},
	{"bzip2", 0, []byte("BZh")},
	{"7z", 0, []byte("7z\xbc\xaf\x27\x1c")},
	{"rar", 0, []byte("Rar!\x1a\x07")},
	{"lz4", 0, []byte{0x04, 0x22, 0x4d, 0x18}},
	{"lzma", 0, []byte{0x5d, 0x00, 0x00}},
	{"cab", 0, []byte("MSCF")},
	{"ogg", 0, []byte("OggS")},
	{"flac", 0, []byte("fLaC")},
	{"mp3", 0, []byte("ID3")},
	{"webp/avi/wav", 0, []byte("RIFF")},
	{"mp4/mov/heic", 4, []byte("ftyp")},
	{"dicom", 128, []byte("DICM")},
	{"tiff", 0, []byte("II*\x00")},
	{"tiff", 0, []byte("MM\x00*")},
	{"zlib", 0, []byte{0x78, 0x9c}},
	{"zlib", 0, []byte{0x78, 0xda}},
	{"zlib", 0, []byte{0x78, 0x01}},
	{"squashfs", 0, []byte("hsqs")},
	{"woff", 0, []byte("wOF")},
}

// knownFormat returns the name of the compressed format head starts with,
// or "".
func knownFormat(head []byte) string {
	for _, m := range magics {
		if len(head) >= m.offset+len(m.sig) && bytes.Equal(head[m.offset:m.offset+len(m.sig)], m.sig) {
			return m.name
		}
	}
	return ""
}
