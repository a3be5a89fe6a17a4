package etcdstate

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// Nodes returns the node records of a run, sorted by id.
func (s *Store) Nodes(runID string) ([]state.NodeRecord, error) {
	var nodes []state.NodeRecord
	err := s.read(func(ctx context.Context) error {
		run, resp, err := s.withRun(ctx, runID, clientv3.OpGet(s.k.rosters(runID), clientv3.WithPrefix()))
		if err != nil {
			return err
		}
		ids, err := s.rosterIDs(resp.Responses[1].GetResponseRange().Kvs)
		if err != nil {
			return err
		}
		src, err := s.nodeSources(ctx, runID, ids, resp.Header.Revision)
		if err != nil {
			return err
		}
		nodes = make([]state.NodeRecord, 0, max(run.Total, len(ids), 1))
		return s.eachRecord(src, func(id string, stored, key []byte) error {
			if stored == nil {
				nodes = append(nodes, state.NodeRecord{ID: id, State: state.NodePending})
				return nil
			}
			n, err := s.decodeNode(key, id, stored)
			nodes = append(nodes, n)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return nodes, nil
}

// A big run's node keys are read in up to nodePageCount range requests at
// once, of at least nodePageMin roster ids each, split at roster ids: the
// client sends them to the members in turn, which answer in parallel.
const (
	nodePageCount = 4
	nodePageMin   = 1000
)

// nodeSources reads where a run's node records are as of revision rev
// (that of a linearizable read, which read the roster ids): its nodes' own
// keys, in pages, and its node blocks, at once. The reads are
// serializable: at a revision already read linearizably, a member gives the
// same answer without asking the leader; one that has not applied it yet
// says so, and the range is read again linearizably.
func (s *Store) nodeSources(ctx context.Context, runID string, ids []string, rev int64) (nodeSources, error) {
	prefix := s.k.nodes(runID)
	bounds := []string{prefix}
	count := min(nodePageCount, len(ids)/nodePageMin)
	for i := 1; i < count; i++ {
		bounds = append(bounds, prefix+ids[i*len(ids)/count])
	}
	bounds = append(bounds, clientv3.GetPrefixRangeEnd(prefix))
	// The ranges: the pages of own keys, then the blocks.
	ranges := len(bounds)
	got := make([][]*mvccpb.KeyValue, ranges)
	errs := make([]error, ranges)
	var wg sync.WaitGroup
	for i := range ranges {
		from, to := s.k.nblks(runID), clientv3.GetPrefixRangeEnd(s.k.nblks(runID))
		if i < ranges-1 {
			from, to = bounds[i], bounds[i+1]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.cli.Get(ctx, from, clientv3.WithRange(to), clientv3.WithRev(rev), clientv3.WithSerializable())
			if err != nil && ctx.Err() == nil {
				resp, err = s.cli.Get(ctx, from, clientv3.WithRange(to), clientv3.WithRev(rev))
			}
			if err != nil {
				errs[i] = err
				return
			}
			got[i] = resp.Kvs
		}()
	}
	wg.Wait()
	src := nodeSources{prefix: prefix, roster: ids, blocks: got[ranges-1]}
	for i, page := range got[:ranges-1] {
		if errs[i] != nil {
			return src, errs[i]
		}
		src.own = append(src.own, page...)
	}
	return src, errs[ranges-1]
}

func (s *Store) decodeNode(key []byte, id string, stored []byte) (state.NodeRecord, error) {
	n, err := state.DecodeNode(stored)
	if err != nil {
		return n, s.corrupt(string(key), "node record of %q: %v", id, err)
	}
	return n, nil
}

// nodeScanPage is how many node blocks Node reads per request.
const nodeScanPage = 64

// Node returns one node record of a run, or state.ErrRunNotFound or
// state.ErrNodeNotFound. It reads the node's own key and the run's node
// blocks newest first, down to the first that holds the node or is older
// than its own key (nodeblock.go), and the roster when neither has it.
func (s *Store) Node(runID, nodeID string) (state.NodeRecord, error) {
	var n state.NodeRecord
	err := s.read(func(ctx context.Context) error {
		newest := []clientv3.OpOption{clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(nodeScanPage)}
		_, resp, err := s.withRun(ctx, runID, clientv3.OpGet(s.k.node(runID, nodeID)),
			clientv3.OpGet(s.k.nblks(runID), append(newest, clientv3.WithPrefix())...))
		if err != nil {
			return err
		}
		rev := resp.Header.Revision
		notFound := fmt.Errorf("node %q of run %q: %w", nodeID, runID, state.ErrNodeNotFound)
		var own *mvccpb.KeyValue
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 {
			own = kvs[0]
		}
		page := resp.Responses[2].GetResponseRange()
		blocks, more := page.Kvs, page.More
		for len(blocks) > 0 {
			b := blocks[0]
			if own != nil && b.ModRevision < own.ModRevision {
				break // its own key is newer than any block left
			}
			var stored []byte
			in := false
			if err := splitNodeBlock(b.Value, func(id string, rec []byte) {
				if id == nodeID {
					stored, in = rec, true
				}
			}); err != nil {
				return s.corrupt(string(b.Key), "node block: %v", err)
			}
			if in {
				if len(stored) == 0 {
					return notFound // removed
				}
				n, err = s.decodeNode(b.Key, nodeID, stored)
				return err
			}
			if blocks = blocks[1:]; len(blocks) == 0 && more {
				next, err := s.cli.Get(ctx, s.k.nblks(runID), append(newest, clientv3.WithRange(string(b.Key)), clientv3.WithRev(rev))...)
				if err != nil {
					return err
				}
				blocks, more = next.Kvs, next.More
			}
		}
		if own != nil && len(own.Value) == 0 {
			return notFound // removed
		}
		if own != nil {
			n, err = s.decodeNode(own.Key, nodeID, own.Value)
			return err
		}
		// No record: pending, if the roster has it.
		roster, err := s.cli.Get(ctx, s.k.rosters(runID), clientv3.WithPrefix(), clientv3.WithRev(rev))
		if err != nil {
			return err
		}
		ids, err := s.rosterIDs(roster.Kvs)
		if err != nil {
			return err
		}
		if _, ok := slices.BinarySearch(ids, nodeID); !ok {
			return notFound
		}
		n = state.NodeRecord{ID: nodeID, State: state.NodePending}
		return nil
	})
	return n, err
}
