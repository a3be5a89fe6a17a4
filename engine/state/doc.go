// Package state keeps reprise's run state in one go.etcd.io/bbolt file: a
// record per run with the graph snapshot taken at its start, a record per
// node, and an append-only, hash-chained journal per run.
//
// # Layout
//
//	meta/schema                       "1" (SchemaVersion)
//	runs/<run>                        Run, JSON
//	snapshots/<run>                   the graph file bytes
//	heads/<run>                       journal head: last seq (8 bytes BE) + its hash (32 bytes)
//	nodes/<run>/<node>                NodeRecord, compact binary (codec.go)
//	journal/<run>/<seq, 8 bytes BE>   Entry, JSON
//
// Runs and journal entries are JSON, readable with the bbolt tool. Node
// records, rewritten on every transition and read all at once on resume,
// use a compact binary form: a third of the size, seven times quicker to
// decode (BENCH.md). The journal head lets Apply chain an entry without
// scanning the journal.
// Snapshots and heads live apart from the run records: bbolt rewrites a
// whole leaf page (with its overflow) when one of its keys changes, and a
// head changes on every commit while a snapshot may weigh megabytes.
//
// # Journal hashes
//
// The canonical encoding of an entry is the exact JSON stored for it with
// the "hash" field (always the last one) empty: `…,"prev":"<hex>","hash":""}`.
// Its hex SHA-256 is the entry's Hash, and the stored bytes are the
// canonical encoding with that hash spliced in. Prev is the previous
// entry's Hash ("" for the first). Verify recomputes every hash from the
// stored bytes, so a change of any byte of any entry is caught, as are a
// missing, reordered or appended entry (the head would not match).
//
// # Records against the journal
//
// Every write of a node record, a snapshot or the run record comes with a
// journal entry that says what was stored (the store writes one itself when
// the change has none: node-updated, node-removed, snapshot-replaced,
// run-updated): Entry.Record, the digest of a node record; data graph_hash,
// the snapshot's SHA-256; data run_record, the run record as stored (a few
// hundred bytes, a few times a run: a field edited is named with both
// values). Verify holds each stored record to the last
// entry that stored it (verify.go), so that a record edited outside reprise
// is reported even though the chain is whole. Journals written before run
// records were journaled are held to the status their last run entry gave.
//
// # Writes and failure
//
// Every write is a bbolt transaction: a node's record and its journal entry
// land together or not at all. Apply calls from many goroutines are
// group-committed by one writer goroutine: it takes everything queued,
// commits it in one transaction (two fdatasyncs), wakes the callers, and
// repeats; there is no timer. Apply returns only once its changes are
// durable; if a commit fails, every caller of that batch gets the error and
// none of its changes is stored. A crash (SIGKILL, power cut) loses at most
// the batch being committed, whose callers had not returned.
//
// # Opening
//
// The file is created with mode 0600. bbolt takes an flock on it: exclusive
// for a writer, shared for a reader; Open is refused at once, with
// *LockedError naming the holder found in PATH.holder (written by a writer
// after it takes the lock, removed on Close), when a writer holds the lock —
// also another Store of the same process. A writer held off only by readers
// (a status command reading the file) tries again for up to two seconds. Before bbolt maps an existing file,
// Open reads its two meta pages under the same lock and checks their magic,
// version, checksum and the file size they require: a damaged or truncated
// file gives *CorruptError and is never written to. Unlike bbolt, a file
// with one bad meta page is refused rather than silently rolled back to the
// older one. Damage found later (a bad page deep in the file) gives
// *CorruptError too: panics and memory faults of bbolt are recovered.
package state
