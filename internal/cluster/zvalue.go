package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/reprise-si/reprise/internal/zblob"
)

// Offer batches (Keys.Offer) and result batches (Keys.Batch) are stored
// packed when that saves an eighth or more (zblob): the byte valueMark,
// then a zstd frame of the batch's JSON. JSON never starts with that
// byte, so a plain value (one too small to pack, or written by an older
// coordinator or agent) reads as before. Every byte of a value goes
// through Raft to each etcd member, into its log and store, and to each
// watcher: a level's offers and results are several kilobytes of JSON
// that repeats itself (field names, the batch's run, graph and agent),
// which packs five times smaller or better.
//
// An agent packs the results of an offer batch only if the batch came
// packed: a coordinator that does not read packed values (an older one)
// offers plain, and gets its results plain. An older agent does not read
// a packed offer batch: it also spoke protocol 0, and a coordinator of
// this version offers it nothing (protocol.go).

// valueMark is the first byte of a packed value.
const valueMark = 0x01

// maxValueBytes bounds the JSON of a packed value: a writer packs no
// larger one (it goes plain, and etcd refuses it past its request limit,
// as before), and a reader unpacks no larger one. The batches' own limits
// keep them far below it (maxOfferBytes and maxTxnBytes for offers,
// maxBatchBytes and maxResultBytes for results, counted on the JSON); a
// single call's inputs or result may pass them, up to the graphs' largest
// limits.node_outputs (16 MiB).
const maxValueBytes = 16 << 20

// packValue returns the value to store for js, the JSON of an offer or a
// result batch: packed when that saves, else js itself.
func packValue(js []byte) []byte {
	if len(js) < zblob.MinSize || len(js) > maxValueBytes {
		return js
	}
	z, ok := zblob.Pack(append(make([]byte, 0, len(js)/4+64), valueMark), js)
	if !ok {
		return js
	}
	return z
}

// isPacked tells whether v is a packed value.
func isPacked(v []byte) bool { return len(v) > 0 && v[0] == valueMark }

// unpackValue returns the JSON of a value packValue wrote, packed or not.
// A damaged packed value gives an error, never a panic.
func unpackValue(v []byte) ([]byte, error) {
	if !isPacked(v) {
		return v, nil
	}
	return zblob.Unpack(v[1:], maxValueBytes)
}

// decodeOffer reads an offer batch's value, its items given the batch's
// shared fields.
func decodeOffer(v []byte) (OfferBatch, error) {
	var b OfferBatch
	js, err := unpackValue(v)
	if err != nil {
		return b, fmt.Errorf("offer batch: %w", err)
	}
	if err := json.Unmarshal(js, &b); err != nil {
		return OfferBatch{}, fmt.Errorf("offer batch: %w", err)
	}
	b.expand()
	return b, nil
}

// decodeResults reads a result batch's value. With an error, the results
// are those json.Unmarshal decoded (none when the value is not JSON or
// does not unpack).
func decodeResults(v []byte) ([]Result, error) {
	js, err := unpackValue(v)
	if err != nil {
		return nil, fmt.Errorf("result batch: %w", err)
	}
	var rs []Result
	if err := json.Unmarshal(js, &rs); err != nil {
		return rs, fmt.Errorf("result batch: %w", err)
	}
	return rs, nil
}
