package etcdstate

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/reprise-si/reprise/engine/state"
)

// A graph snapshot is stored compressed when that saves (a 10,000-node
// YAML graph of 815 KB takes about a tenth), so that creating a run sends
// one chunk through Raft instead of four. Its chunks then hold, end to
// end:
//
//	snapMagic (5 bytes) | its length, uncompressed (8 bytes BE) | DEFLATE stream
//
// A graph file is YAML or JSON text, which never holds a NUL byte: no
// plain snapshot, such as earlier versions wrote, starts with the magic. A
// plain one that does anyway (bytes that are no graph) is written
// compressed, and one an earlier version wrote is recognised by its hash
// when it does not decompress. The run's graph hash stays the SHA-256 of
// the uncompressed bytes.
const snapMagic = "\x00RSZ\x01"

const (
	// snapMinCompress is the smallest snapshot stored compressed: below,
	// the header and the reader cost more than they save.
	snapMinCompress = 1 << 10
	// snapMaxSize bounds a snapshot's uncompressed length: the largest
	// graph file there is, graphs.MaxFileSize (TestSnapMaxSize; the
	// package does not import graphs). A bigger one is stored plain; a
	// compressed one that says or turns out bigger is damaged.
	snapMaxSize = 64 << 20
	// snapMaxRatio is the most DEFLATE expands a byte (258 bytes per
	// 2-bit code at best, 1032 per byte): a header claiming more from
	// the stream's bytes is damaged, and nothing is allocated for it.
	snapMaxRatio = 1032
	snapHeader   = len(snapMagic) + 8
)

var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.BestSpeed) // level 1 is valid: no error
	return w
}}

// packSnap returns what a snapshot's chunks hold: snap compressed when
// that saves an eighth or more, else snap itself.
func packSnap(snap []byte) []byte {
	magic := bytes.HasPrefix(snap, []byte(snapMagic))
	if (len(snap) < snapMinCompress && !magic) || len(snap) > snapMaxSize {
		return snap
	}
	var buf bytes.Buffer
	buf.Grow(len(snap)/4 + snapHeader)
	buf.WriteString(snapMagic)
	buf.Write(binary.BigEndian.AppendUint64(nil, uint64(len(snap))))
	w := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(w)
	w.Reset(&buf)
	// Writes to a bytes.Buffer do not fail.
	_, _ = w.Write(snap)
	_ = w.Close()
	if buf.Len() > len(snap)-len(snap)/8 && !magic {
		return snap
	}
	return buf.Bytes()
}

// snapChunks returns the keys of run id's snapshot named hash: packSnap's
// bytes in chunks of ChunkSize.
func (s *Store) snapChunks(id, hash string, snap []byte) []op {
	data := packSnap(snap)
	var out []op
	for i := 0; i*ChunkSize < len(data); i++ {
		out = append(out, op{key: s.k.chunk(id, hash, i), val: data[i*ChunkSize : min((i+1)*ChunkSize, len(data))]})
	}
	return out
}

// unpackSnap returns the snapshot that data, the chunks of run's snapshot
// end to end, hold. A compressed one that is damaged, or that decompresses
// past snapMaxSize or its header's length, gives *state.CorruptError
// naming its first chunk's key.
func (s *Store) unpackSnap(run state.Run, nchunks int, data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte(snapMagic)) {
		return data, nil
	}
	snap, err := inflateSnap(data)
	if err == nil {
		return snap, nil
	}
	if run.GraphHash != "" && state.GraphHash(data) == run.GraphHash {
		return data, nil // plain, written by an earlier version
	}
	return nil, s.corrupt(s.k.chunk(run.ID, run.GraphHash, 0), "compressed graph snapshot of run %q (%d chunks, %d bytes): %v", run.ID, nchunks, len(data), err)
}

// inflateSnap decompresses a snapshot packSnap compressed, allocating at
// most its header's length, itself at most snapMaxSize.
func inflateSnap(data []byte) ([]byte, error) {
	if len(data) < snapHeader {
		return nil, fmt.Errorf("%d bytes, shorter than its header", len(data))
	}
	n := binary.BigEndian.Uint64(data[len(snapMagic):])
	stream := data[snapHeader:]
	if n > snapMaxSize {
		return nil, fmt.Errorf("its header says %d bytes uncompressed, over the %d MiB limit of graph files", n, snapMaxSize>>20)
	}
	if n > uint64(len(stream))*snapMaxRatio {
		return nil, fmt.Errorf("its header says %d bytes uncompressed, more than %d compressed bytes can hold", n, len(stream))
	}
	r := flate.NewReader(bytes.NewReader(stream))
	snap := make([]byte, n)
	if _, err := io.ReadFull(r, snap); err != nil {
		return nil, fmt.Errorf("decompress %d bytes: %w", n, err)
	}
	var more [1]byte
	if _, err := io.ReadFull(r, more[:]); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("longer than the %d bytes its header says", n)
		}
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return snap, nil
}
