package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the layout this package writes. A file
// with a higher version is refused with ErrSchemaVersion.
const SchemaVersion = 1

// Bucket and key names (see doc.go for the layout).
var (
	bucketMeta      = []byte("meta")
	bucketRuns      = []byte("runs")
	bucketSnapshots = []byte("snapshots")
	bucketHeads     = []byte("heads")
	bucketNodes     = []byte("nodes")
	bucketJournal   = []byte("journal")
	keySchema       = []byte("schema")
	dataBuckets     = [][]byte{bucketRuns, bucketSnapshots, bucketHeads, bucketNodes, bucketJournal}
)

// Store is one open state file. It is safe for concurrent use: reads run
// in parallel with each other and with the single writer goroutine that
// group-commits Apply calls. Close it when done: it commits what is queued,
// releases the file lock and removes the holder file.
type Store struct {
	path     string
	db       *bolt.DB
	readOnly bool
	holder   Holder

	// queue holds the Apply calls for the writer goroutine (group
	// commit: commit, in apply.go).
	queue *GroupQueue[*request]

	stats   statCounters
	written atomic.Bool // a write transaction of this Store has committed

	checkMu  sync.Mutex // guards checked and checkErr
	checked  bool       // the whole file was checked (checkBeforeWrite)
	checkErr error      // what that check found
}

// readerWait is how long a writer waits for readers to let go of the file:
// a reader (status, log) holds it for a moment, a writer for a whole run.
const readerWait = 2 * time.Second

// Open opens the state file at path, creating it with mode 0600 when it
// does not exist (unless opts.ReadOnly): atomically, so that a creation cut
// short never leaves a half-made file (a file left half-made by an older
// version, one that holds no run, is rebuilt; a read-only Open of it gives
// ErrNoRunYet). It fails at once with *LockedError when another writer, in
// this process or another, holds the file; a writer held off by read-only
// openers tries again for up to two seconds first. It fails with
// *CorruptError when the file is damaged: a writer reads and checks every
// page of an existing file (structure with bbolt's Tx.Check, journal hashes,
// records, snapshots) before its first write, so a damaged file is refused
// before anything is written. It fails with ErrSchemaVersion when a newer
// reprise wrote the file.
func Open(path string, opts Options) (*Store, error) {
	deadline := time.Now().Add(readerWait)
	reopens := 0
	for {
		s, err := open(path, opts)
		if errors.Is(err, errReopen) && reopens < 10 {
			reopens++
			continue
		}
		var le *LockedError
		if opts.ReadOnly || !errors.As(err, &le) || !le.readersOnly() || time.Now().After(deadline) {
			return s, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func open(path string, opts Options) (*Store, error) {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if opts.ReadOnly {
			return nil, fmt.Errorf("open state file %s: %w", path, err)
		}
		if err := createFile(path); err != nil {
			return nil, err
		}
		return nil, errReopen
	case err != nil:
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	case info.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("open state file %s: %w", path, ErrSymlink)
	case info.IsDir():
		return nil, fmt.Errorf("open state file %s: is a directory", path)
	}
	if _, err := CheckDir(path); err != nil {
		return nil, err
	}
	m, err := precheck(path, !opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	// bbolt writes a freelist when it opens, for writing, a file that has
	// none (written with NoFreelistSync, as etcd does): keep such a file's
	// mode so that nothing is written before the file is checked.
	db, file, err := openBolt(path, opts, m.freelist == noFreelist)
	if err != nil {
		return nil, err
	}
	if !samePath(file, path) {
		// Rebuilt or replaced between our check and bbolt's lock.
		_ = db.Close()
		return nil, errReopen
	}
	s := &Store{path: path, db: db, readOnly: opts.ReadOnly, queue: NewGroupQueue[*request]()}
	if err := s.view(s.validateSchema); err != nil {
		_ = db.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		if !opts.CheckOnFirstWrite {
			if err := s.checkBeforeWrite(); err != nil {
				_ = db.Close()
				return nil, err
			}
		}
		// The holder file only helps a refused opener name us: a directory
		// where it cannot be written is no reason to refuse the run.
		s.holder = newHolder(opts.Holder)
		_ = writeHolder(path, s.holder)
		go s.queue.Serve(s.commit)
	} else {
		s.queue.NoWriter()
	}
	return s, nil
}

// openBolt opens the file with bbolt, turning a held lock into *LockedError
// and a damaged file into *CorruptError (bbolt may panic or fault on one).
func openBolt(path string, opts Options, noFreelistSync bool) (db *bolt.DB, file *os.File, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				_ = file.Close() // releases the lock bbolt took
			}
			db, file, err = nil, nil, &CorruptError{Path: path, Err: fmt.Errorf("bbolt: %v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Millisecond, // refuse at once when the file is held
		ReadOnly:       opts.ReadOnly,
		NoSync:         opts.NoSync,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: noFreelistSync,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := openNoFollow(name, flag&^os.O_CREATE, mode)
			file = f
			return f, err
		},
	})
	switch {
	case err == nil:
		// bbolt grows a file of more than AllocSize by AllocSize beyond what
		// it needs (16 MB by default): 1 MB keeps small runs small.
		db.AllocSize = 1 << 20
		return db, file, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, nil, lockedError(path, file)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, nil, &CorruptError{Path: path, Err: err}
	default:
		return nil, nil, fmt.Errorf("open state file %s: %w", path, err)
	}
}

func (s *Store) validateSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return &CorruptError{Path: s.path, Err: errors.New("no reprise schema: this is a bbolt file but not a reprise state file")}
	}
	raw := meta.Get(keySchema)
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return &CorruptError{Path: s.path, Err: fmt.Errorf("bad schema version %q", raw)}
	}
	if v > SchemaVersion {
		return fmt.Errorf("open state file %s: schema version %d, this reprise reads up to %d (upgrade reprise): %w",
			s.path, v, SchemaVersion, ErrSchemaVersion)
	}
	for _, name := range dataBuckets {
		if tx.Bucket(name) == nil {
			return &CorruptError{Path: s.path, Err: fmt.Errorf("bucket %q is missing", name)}
		}
	}
	return nil
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close commits every change already queued, stops the writer, removes
// the holder file and releases the lock. Apply calls made after Close
// returns ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	if s.queue.Close() {
		<-s.queue.Done()
		return nil
	}
	<-s.queue.Done()
	return s.release()
}

func (s *Store) release() error {
	if !s.readOnly {
		removeHolder(s.path, s.holder)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", s.path, err)
	}
	return nil
}

// bbolt page layout, for precheck: a 16-byte page header, then the meta.
const (
	pageHeaderSize = 16
	metaSize       = 64 // magic, version, page size, flags, root (16), freelist, pgid, txid, checksum
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
)

type metaPage struct {
	pageSize, root, freelist, pgid, txid uint64
}

// precheck reads the meta pages of an existing file, under the same lock
// bbolt would take, before bbolt maps it: a damaged file is reported
// without bbolt ever writing to it or faulting on it. Unlike bbolt, it
// refuses a file whose two meta pages are not both valid, since falling back
// to the older one would silently drop the last committed transaction. A
// file whose creation was cut short (holdsNoRun) is rebuilt by a writer,
// under its lock, and reported with ErrNoRunYet to a reader.
func precheck(path string, exclusive bool) (metaPage, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return metaPage{}, err
	}
	defer f.Close()
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return metaPage{}, lockedError(path, f)
		}
		return metaPage{}, fmt.Errorf("lock state file %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	info, err := f.Stat()
	if err != nil {
		return metaPage{}, fmt.Errorf("stat state file %s: %w", path, err)
	}
	m, err := checkMetas(f, info.Size())
	if err == nil && (m.txid > 1 || m.pgid > initPages) {
		return m, nil
	}
	// A file bbolt created but where nothing was ever committed is as
	// empty as one cut short.
	if err == nil || holdsNoRun(f, info.Size()) {
		if !exclusive {
			return m, fmt.Errorf("state file %s %w (%d bytes: empty, or left half-made by a creation cut short; the next run rebuilds it)", path, ErrNoRunYet, info.Size())
		}
		if err := rebuildFile(path, f); err != nil {
			return m, err
		}
		return m, errReopen
	}
	return m, &CorruptError{Path: path, Err: err}
}

// checkMetas checks both meta pages and returns the newer one.
func checkMetas(f io.ReaderAt, size int64) (metaPage, error) {
	fail := func(format string, args ...any) (metaPage, error) {
		return metaPage{}, fmt.Errorf(format, args...)
	}
	if size < 2*1024 {
		return fail("too short to be a state file (%d bytes)", size)
	}
	m0, err0 := readMeta(f, 0)
	pageSize := m0.pageSize
	if err0 != nil {
		// Like bbolt: find the second meta page by trying the page sizes.
		for ps := uint64(1024); ps <= 1<<24 && int64(ps) < size; ps <<= 1 {
			if m, err := readMeta(f, int64(ps)); err == nil && m.pageSize == ps {
				return fail("meta page 0 is invalid (%v); meta page 1 is intact, but using it alone could lose the last commit", err0)
			}
		}
		if errors.Is(err0, errNotBolt) {
			return fail("not a bbolt file (no valid meta page)")
		}
		return fail("both meta pages are invalid (meta 0: %v)", err0)
	}
	if size < int64(2*pageSize) {
		return fail("truncated: %d bytes, less than the two meta pages of %d bytes", size, pageSize)
	}
	m1, err1 := readMeta(f, int64(pageSize))
	if err1 != nil {
		return fail("meta page 1 at offset %d is invalid (%v); meta page 0 is intact, but using it alone could lose the last commit", pageSize, err1)
	}
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	if need := int64(m.pgid * m.pageSize); size < need {
		return fail("truncated: %d bytes, the last commit (txid %d) needs %d (%d pages of %d bytes)", size, m.txid, need, m.pgid, m.pageSize)
	}
	if m.root < 2 || m.root >= m.pgid {
		return fail("root page %d is outside the file's %d pages", m.root, m.pgid)
	}
	if m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid) {
		return fail("freelist page %d is outside the file's %d pages", m.freelist, m.pgid)
	}
	return m, nil
}

var errNotBolt = errors.New("bad magic number")

func readMeta(f io.ReaderAt, off int64) (metaPage, error) {
	var buf [pageHeaderSize + metaSize]byte
	if _, err := f.ReadAt(buf[:], off); err != nil {
		return metaPage{}, fmt.Errorf("read meta page at offset %d: %w", off, err)
	}
	b := buf[pageHeaderSize:]
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != boltMagic {
		return metaPage{}, errNotBolt
	}
	if v := le.Uint32(b[4:]); v != boltVersion {
		return metaPage{}, fmt.Errorf("bbolt file format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if got, want := h.Sum64(), le.Uint64(b[56:]); got != want {
		return metaPage{}, fmt.Errorf("checksum %016x, stored %016x", got, want)
	}
	m := metaPage{pageSize: uint64(le.Uint32(b[8:])), root: le.Uint64(b[16:]),
		freelist: le.Uint64(b[32:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	if m.pageSize < 512 || m.pageSize > 1<<24 || m.pageSize&(m.pageSize-1) != 0 {
		return metaPage{}, fmt.Errorf("bad page size %d", m.pageSize)
	}
	return m, nil
}
