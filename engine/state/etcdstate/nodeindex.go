package etcdstate

import (
	"context"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The writer knows, for each run it writes, which node block holds each
// node's current record and how many current records each block holds
// (nodeIndex), read once at its first write to the run (loadIndexes). A
// transaction that supersedes the last current records of a block deletes
// it. Another writer moving the run's head makes the transaction's guard
// fail: the writer then reads the index again before sealing again.
//
// An index that is stale never deletes a block holding a current record:
// it counts in a block only records it saw there, and takes one off for a
// write of that node the transaction itself commits, which is later than
// the block. A block written by another writer after the index was read is
// unknown to it, hence never deleted by it (it stays, superseded, until an
// index read after it sees it), and block names are never reused: each is
// the sequence number of an entry.

// nodeIndex is where the current node records of one run are.
type nodeIndex struct {
	where map[string]string // node → the block holding its current record (none: its own key, or the roster)
	live  map[string]int    // block → how many current records it holds
	// orphans are blocks that held no current record when the index was
	// read (left by a writer whose index did not know the later records):
	// the run's next transaction that writes nodes deletes them.
	orphans []string
}

// loadIndexes reads the node index of every existing run of heads the
// writer has none of.
func (s *Store) loadIndexes(ctxs []context.Context, heads map[string]*runHead) error {
	if s.nidx == nil {
		s.nidx = map[string]*nodeIndex{}
	}
	for id, h := range heads {
		if h.run == nil || s.nidx[id] != nil {
			continue
		}
		idx, err := s.loadIndex(ctxs, id)
		if err != nil {
			return err
		}
		s.nidx[id] = idx
	}
	return nil
}

// loadIndex reads a run's node index: its own keys (their revisions) and
// its blocks, in one transaction.
func (s *Store) loadIndex(ctxs []context.Context, id string) (*nodeIndex, error) {
	idx := &nodeIndex{where: map[string]string{}, live: map[string]int{}}
	err := s.retry(context.Background(), ctxs, func(ctx context.Context) error {
		resp, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.k.nodes(id), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
			clientv3.OpGet(s.k.nblks(id), clientv3.WithPrefix()),
		).Commit()
		if err != nil {
			return err
		}
		clear(idx.where)
		clear(idx.live)
		idx.orphans = nil
		type at struct {
			block string
			rev   int64
		}
		latest := map[string]at{}
		for _, b := range resp.Responses[1].GetResponseRange().Kvs {
			key := string(b.Key)
			if err := splitNodeBlock(b.Value, func(node string, _ []byte) {
				if l, ok := latest[node]; !ok || b.ModRevision >= l.rev {
					latest[node] = at{key, b.ModRevision}
				}
			}); err != nil {
				return s.corrupt(key, "node block: %v", err)
			}
		}
		prefix := s.k.nodes(id)
		for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
			node := string(kv.Key[len(prefix):])
			if l, ok := latest[node]; ok && kv.ModRevision > l.rev {
				delete(latest, node)
			}
		}
		for node, l := range latest {
			idx.where[node] = l.block
			idx.live[l.block]++
		}
		for _, b := range resp.Responses[1].GetResponseRange().Kvs {
			if idx.live[string(b.Key)] == 0 {
				idx.orphans = append(idx.orphans, string(b.Key))
			}
		}
		return nil
	})
	return idx, err
}

// dropIndexes forgets the node index of runs ids (nil: of every run).
func (s *Store) dropIndexes(ids []string) {
	if ids == nil {
		s.nidx = nil
		return
	}
	for _, id := range ids {
		delete(s.nidx, id)
	}
}

// nodesCommitted updates the node indexes once t is committed: its nodes
// are where it wrote them, and the blocks it deleted are gone. A commit
// recognised after its answer was lost may have been followed by another
// writer's: the indexes of its runs are read again at the next write.
func (s *Store) nodesCommitted(t *txn) {
	if t.resps == nil {
		s.dropIndexes(t.touched)
		return
	}
	for _, id := range t.touched {
		rn, idx := t.nodes[id], s.nidx[id]
		if rn == nil || idx == nil {
			continue
		}
		if rn.sums.nodes > 0 { // its deletes were written
			idx.orphans = slices.DeleteFunc(idx.orphans, func(b string) bool { return slices.Contains(rn.dead, b) })
		}
		for _, node := range rn.order {
			if old, ok := idx.where[node]; ok {
				if idx.live[old]--; idx.live[old] <= 0 {
					delete(idx.live, old)
				}
				delete(idx.where, node)
			}
		}
		for _, part := range rn.parts {
			for _, node := range part.nodes {
				idx.where[node] = part.key
			}
			idx.live[part.key] += len(part.nodes)
		}
	}
}
