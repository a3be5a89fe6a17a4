package etcdstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/reprise-si/reprise/engine/state"
)

// A run's roster (/P/runs/roster/<run>/<i>, in chunks of at most
// ChunkSize) lists the nodes that CreateRun or ImportRun stored as plain
// pending records (state.NodeRecord{ID, State: pending}, nothing else):
// such a node has no record until its first change writes one (in a node
// block, nodeblock.go). A 10,000-node run is then created with a few puts
// instead of 10,000. A node of the roster without a record is pending; an
// empty record is a node removed (it may be on the roster). Readers merge
// the roster, the nodes' own keys and the node blocks (eachRecord): every
// reader gives the same records as if each node had its key, and a copy of
// the run carries them all.

// pendingRecord is how a plain pending node is stored.
func pendingRecord(id string) ([]byte, error) {
	return state.EncodeNode(&state.NodeRecord{ID: id, State: state.NodePending})
}

// splitNodes sorts out the records of a new run: the ids of the plain
// pending ones, sorted, as roster chunks, and the puts of the others.
func (s *Store) splitNodes(run string, nodes []state.StoredNode) ([]op, error) {
	var ids []string
	var out []op
	for _, n := range nodes {
		plain, err := pendingRecord(n.ID)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(plain, n.Stored) {
			ids = append(ids, n.ID)
		} else {
			out = append(out, op{key: s.k.node(run, n.ID), val: n.Stored})
		}
	}
	slices.Sort(ids)
	var chunk []byte
	chunks := 0
	for i, id := range ids {
		chunk = binary.AppendUvarint(chunk, uint64(len(id)))
		chunk = append(chunk, id...)
		if i == len(ids)-1 || len(chunk) >= ChunkSize-len(ids[i+1])-binary.MaxVarintLen32 {
			out = append(out, op{key: s.k.roster(run, chunks), val: chunk})
			chunk, chunks = nil, chunks+1
		}
	}
	return out, nil
}

var errBadRoster = errors.New("bad length")

// rosterIDs returns the ids a run's roster chunks list (kvs in key order).
func (s *Store) rosterIDs(kvs []*mvccpb.KeyValue) ([]string, error) {
	var ids []string
	for _, kv := range kvs {
		v := kv.Value
		for len(v) > 0 {
			n, k := binary.Uvarint(v)
			if k <= 0 || n == 0 || n > uint64(len(v)-k) {
				return nil, s.corrupt(string(kv.Key), "roster of pending nodes: %v", errBadRoster)
			}
			ids = append(ids, string(v[k:k+int(n)]))
			v = v[k+int(n):]
		}
	}
	slices.Sort(ids)
	return ids, nil
}
