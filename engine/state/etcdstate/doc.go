// Package etcdstate keeps reprise's run state in an etcd cluster, with the
// behaviour of the bbolt file (package state): the same records, the same
// binary node codec, the same hash-chained journal (state.SealEntry), the
// same checks (state.VerifyRun: chain, node records, snapshot, run record).
// A run copied from a file to etcd or back keeps its entries and its run
// record byte for byte, so `reprise log --verify` says the same on both
// sides.
//
// # Layout
//
// Under the URL's prefix P (etcd://HOST:PORT/P), keys mirror the buckets of
// the file:
//
//	/P/runs/rec/<run>                      Run, JSON
//	/P/runs/head/<run>                     journal head: seq (8 bytes BE) + hash (32 bytes)
//	/P/runs/nblk/<run>/<seq, 16 hex>[-<i>] the node records one transaction wrote (node block),
//	                                       named by the run's last entry it appended;
//	                                       zstd-compressed when that saves (nodeblock.go: 0x02,
//	                                       frame; else plain: 0x01, records)
//	/P/runs/nodes/<run>/<node>             NodeRecord, binary (state.EncodeNode); empty: removed
//	/P/runs/roster/<run>/<i>               ids of the nodes created plain pending, without a key yet
//	/P/runs/journal/<run>/<seq, 16 hex>    Entry, the sealed JSON (state.SealEntry), or a block of
//	                                       the entries one transaction appended, named by the last;
//	                                       zstd-compressed when that saves (block.go: 0x01, frame)
//	/P/runs/snap/<run>/<graph hash>/<i>    graph snapshot, DEFLATE-compressed when that saves
//	                                       (snapzip.go: magic \x00RSZ\x01, length, stream;
//	                                       else plain), in chunks of 256 KiB
//	/P/runs/creating/<run>                 claim of a CreateRun under way
//	/P/operators/<name>                    Operator, JSON
//	/P/operators-rev                       guard: put by every change of the operators (with
//	                                       the change's random id), so that a change checked
//	                                       against a read is made only if none came after it,
//	                                       and a retried one knows its own (operators.go)
//
// Other families under P (agents/, work/, leader/, commands/) belong to the
// agents and the coordinator. Run ids may not contain '/'. A snapshot is
// addressed by the SHA-256 of its uncompressed bytes, which the run record
// names. It is stored compressed when that saves (the 815 KB YAML of a
// 10,000-node graph takes 56 KB, one chunk instead of four) and reads back
// as its original bytes; a plain one, as earlier versions wrote, reads as
// it is; a compressed one that is damaged or decompresses past the graphs'
// 64 MiB limit gives *state.CorruptError. Its chunks are written before
// the transaction that switches the record to them, so that a snapshot of
// any size never makes a request near etcd's 1.5 MiB limit. A journal
// value that compresses well (a block of a level's entries, a few hundred
// of JSON) is stored as 0x01 and the zstd frame of its plain value
// (block.go, internal/zblob); it reads as the entries it holds, a plain
// block or entry as earlier versions wrote reads as it is, and one that
// does not decompress, or says more than 16 MiB, gives *state.CorruptError.
// A new run's plain pending nodes are listed in its roster instead of
// having a key each (roster.go), so that creating a 10,000-node run is a
// few puts. The node records one transaction writes for a run share one
// key, a node block (nodeblock.go), named by the last journal entry the
// transaction appends to the run (parts -1, -2… beyond ChunkSize): etcd's
// cost is per key, and a level of a hundred steps commits two keys (its
// records, its entries) instead of a hundred and one. A node's own key
// holds its record when a copy or CreateRun stored it there, when a
// transaction appends no entry to the run, or when an earlier version of
// this package wrote it: a node's record is the one in the key of the
// highest ModRevision among its own key and the blocks holding it. Every
// reader merges roster, own keys and blocks read at one revision, so that
// they give the records the file gives. A block is deleted by the
// transaction that supersedes the last record it held current (the
// writer's node index, nodeindex.go), so that a run keeps about one record
// per node. A part of a node block is cut on its plain bytes (at most
// ChunkSize, or one bigger record) and stored as 0x02 and the zstd frame
// of its plain value when that saves (a level's hundred records take about
// a fifth); a plain block, as earlier versions wrote every block, reads as
// it is, and a compressed one that does not decompress, says more than
// twice ChunkSize or holds no plain block gives *state.CorruptError.
//
// # Writes
//
// A node's record and its journal entry are written in one transaction
// (Txn). Apply calls from many goroutines are group-committed by one writer
// goroutine, as in the file: it takes everything queued and writes it in as
// few transactions as etcd allows (at most MaxTxnBytes bytes each; a node
// written twice in a batch is written once, with its last record). etcd
// allows MaxTxnOps operations per level of a transaction, and a nested
// transaction what its parent's level leaves: the writes are spread over
// nested transactions (txn.go, nest), 4,096 in one transaction with the
// default 128, applied at one revision like a flat one. The entries one
// transaction appends to a run share one journal key (block.go), its node
// records one node block, so that a change costs a share of two keys (and
// of the delete of a block it supersedes), and a batch of a few hundred
// changes is one round trip. Each transaction is guarded by the
// ModRevision of the journal head of every run it touches: if another
// process (a second machine, an agent) moved a head meanwhile, the writer
// reads the heads and its node index again and seals the entries again
// after the new head, so that two writers never fork a chain. An Apply bigger than one transaction is written in
// several, in order: each change stays whole with its entry, and a crash
// between them leaves a prefix of the changes, never a later one without an
// earlier.
//
// ApplyWith commits a caller's own etcd writes (Extra) in the transaction
// of its last change: the coordinator offers the steps it starts to the
// agents in the commit that records them running (internal/cluster).
//
// # Failure
//
// While etcd cannot commit (no quorum, no member reachable), Apply blocks
// and the writer retries with backoff; Apply returns once the changes are
// durable (committed by a quorum), or with ctx.Err() when its context is
// done (the changes may still be committed then: read the state back). A
// transaction whose answer was lost is recognised on retry by the head it
// left, and never written twice. Interrupt (the first SIGINT of a run) makes
// the writer give up instead of waiting, so that a run stops cleanly; the
// changes not written are those whose Apply had not returned. Reads use
// linearizable gets with a timeout (Options.ReadTimeout). Nothing read back
// from etcd is trusted: a value that does not decode gives
// *state.CorruptError naming its key, never a panic.
package etcdstate
