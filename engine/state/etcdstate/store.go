package etcdstate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// Limits of one transaction. etcd refuses a transaction of more than 128
// operations (--max-txn-ops) and a request of more than 1.5 MiB
// (--max-request-bytes) by default.
const (
	DefaultMaxTxnOps   = 128
	DefaultMaxTxnBytes = 1 << 20
	// ChunkSize is the size of a snapshot chunk.
	ChunkSize = 256 << 10
)

// Options tunes Open. The zero value is what a command uses.
type Options struct {
	// Dial is passed to etcdconn.Dial (TLS, dial timeout).
	Dial etcdconn.Options
	// ReadTimeout bounds each read (10 s when zero).
	ReadTimeout time.Duration
	// AttemptTimeout bounds each attempt of a write before it is retried
	// (5 s when zero).
	AttemptTimeout time.Duration
	// MaxTxnOps and MaxTxnBytes bound one transaction (DefaultMaxTxnOps
	// and DefaultMaxTxnBytes when zero).
	MaxTxnOps   int
	MaxTxnBytes int
	// CloseTimeout bounds how long Close waits for queued changes while
	// etcd cannot commit them (10 s when zero).
	CloseTimeout time.Duration
	// ReadOnly refuses every write with state.ErrReadOnly.
	ReadOnly bool
	// OnWait, when set, is called when a write starts waiting for etcd
	// (err says why) and again with nil once it went through.
	OnWait func(err error)
}

func (o *Options) defaults() {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 5 * time.Second
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.MaxTxnBytes <= 0 {
		o.MaxTxnBytes = DefaultMaxTxnBytes
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
}

// Store is run state on etcd. It is safe for concurrent use: reads go
// straight to etcd, writes go through one writer goroutine that
// group-commits them (doc.go). Close it when done.
type Store struct {
	cli  *clientv3.Client
	own  bool // the client was dialled by Open: Close closes it
	url  string
	k    keys
	opts Options

	// queue holds the Apply calls for the writer goroutine (group
	// commit: commit, in write.go).
	queue     *state.GroupQueue[*request]
	interrupt chan struct{} // closed by Interrupt
	// heads are the journal heads the writer left, by run: only the
	// writer goroutine uses them.
	heads map[string]*runHead
	// nidx are the node indexes of the runs the writer wrote
	// (nodeindex.go): only the writer goroutine uses them.
	nidx    map[string]*nodeIndex
	intOnce sync.Once
	// unavailable is when etcd last did not answer an attempt (Unix ns;
	// 0 once it answered again).
	unavailable atomic.Int64

	stats struct{ commits, changes, applies, failed atomic.Uint64 }
}

var _ state.Backend = (*Store)(nil)

// Open dials the cluster of a state URL (etcdconn.Parse) and returns its
// store. It fails within the dial timeout with *etcdconn.UnreachableError
// when no member answers.
func Open(ctx context.Context, u etcdconn.URL, opts Options) (*Store, error) {
	cli, err := etcdconn.Dial(ctx, u, opts.Dial)
	if err != nil {
		return nil, err
	}
	s := New(cli, u, opts)
	s.own = true
	return s, nil
}

// New returns the store of u over an existing client, which the caller
// keeps and closes after the store.
func New(cli *clientv3.Client, u etcdconn.URL, opts Options) *Store {
	opts.defaults()
	s := &Store{cli: cli, url: u.String(), k: keys{root: u.Root()}, opts: opts,
		queue: state.NewGroupQueue[*request](), interrupt: make(chan struct{})}
	if opts.ReadOnly {
		s.queue.NoWriter()
	} else {
		go s.queue.Serve(s.commit)
	}
	return s
}

// Path returns the state URL.
func (s *Store) Path() string { return s.url }

// Client returns the etcd client the store uses.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Stats returns the store's counters since Open.
func (s *Store) Stats() state.Stats {
	return state.Stats{Commits: s.stats.commits.Load(), Changes: s.stats.changes.Load(),
		Applies: s.stats.applies.Load(), Failed: s.stats.failed.Load()}
}

// Interrupt makes writes give up instead of waiting for etcd to come back:
// the batch being retried fails, and so does every later request that
// cannot reach etcd at its first attempt (of at most a second) — at once,
// without an attempt, within 3 s of etcd's last failure to answer. Requests
// that etcd answers still go through. A run calls it at its first signal,
// so that it stops cleanly while the cluster has no quorum; the store is
// then only good for the rest of that stop.
func (s *Store) Interrupt() {
	s.intOnce.Do(func() { close(s.interrupt) })
}

// Close writes what is queued (waiting at most Options.CloseTimeout for
// etcd if it cannot commit), stops the writer and, if Open dialled it,
// closes the client. Close is idempotent.
func (s *Store) Close() error {
	if !s.queue.Close() {
		select {
		case <-s.queue.Done():
		case <-time.After(s.opts.CloseTimeout):
			s.Interrupt()
			<-s.queue.Done()
		}
		if s.own {
			return s.cli.Close()
		}
	}
	<-s.queue.Done()
	return nil
}

func (s *Store) corrupt(key string, format string, args ...any) error {
	return &state.CorruptError{Path: s.url, Err: fmt.Errorf("key %s: %s", key, fmt.Sprintf(format, args...))}
}

// keys builds the keys of doc.go's layout.
type keys struct{ root string }

func (k keys) runs() string                { return k.root + "runs/rec/" }
func (k keys) run(id string) string        { return k.root + "runs/rec/" + id }
func (k keys) head(id string) string       { return k.root + "runs/head/" + id }
func (k keys) creating(id string) string   { return k.root + "runs/creating/" + id }
func (k keys) nodes(id string) string      { return k.root + "runs/nodes/" + id + "/" }
func (k keys) node(id, node string) string { return k.nodes(id) + node }
func (k keys) journal(id string) string    { return k.root + "runs/journal/" + id + "/" }
func (k keys) nblks(id string) string      { return k.root + "runs/nblk/" + id + "/" }
func (k keys) operators() string           { return k.root + "operators/" }
func (k keys) operator(name string) string { return k.root + "operators/" + name }
func (k keys) snaps(id string) string      { return k.root + "runs/snap/" + id + "/" }
func (k keys) rosters(id string) string    { return k.root + "runs/roster/" + id + "/" }
func (k keys) roster(id string, i int) string {
	return fmt.Sprintf("%s%04d", k.rosters(id), i)
}
func (k keys) snap(id, hash string) string { return k.snaps(id) + hash + "/" }
func (k keys) entry(id string, seq uint64) string {
	return fmt.Sprintf("%s%016x", k.journal(id), seq)
}

// nblk is the key of part i of the node block named by entry seq.
func (k keys) nblk(id string, seq uint64, part int) string {
	if part == 0 {
		return fmt.Sprintf("%s%016x", k.nblks(id), seq)
	}
	return fmt.Sprintf("%s%016x-%d", k.nblks(id), seq, part)
}
func (k keys) chunk(id, hash string, i int) string { return fmt.Sprintf("%s%04d", k.snap(id, hash), i) }

// checkRunID refuses what cannot be a key segment of a run.
func checkRunID(id string) error {
	if err := state.CheckKey("run id", id); err != nil {
		return err
	}
	if strings.Contains(id, "/") {
		return fmt.Errorf("run id %q: no '/' allowed on etcd: %w", id, state.ErrInvalidChange)
	}
	return nil
}
