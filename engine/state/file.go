package state

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// errReopen tells open to start again: the file at the path was created,
// rebuilt or replaced while we looked at it.
var errReopen = errors.New("state file replaced while opening: open again")

// createFile makes a new, empty state file at path atomically: the file is
// built in a temporary file of the same folder (bbolt's initial pages and
// the schema, fdatasync'ed by bbolt's commit), then moved to path only if
// nothing is there yet (renameat2 RENAME_NOREPLACE, or link(2) where the file
// system lacks it), and the folder is fsync'ed. A creation cut short (disk
// full, crash) leaves at most the temporary file, never a half-made state
// file; when another process creates the file first, its file is kept.
func createFile(path string) error {
	tmp, err := buildEmpty(path)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		err = os.Link(tmp, path)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil // created by another process meanwhile: open that one
	case err != nil:
		return fmt.Errorf("create state file %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// rebuildFile replaces the file at path, which holds no run, by a new empty
// state file. The caller holds the exclusive lock on the old file (f) and
// has checked that path still names it.
func rebuildFile(path string, f *os.File) error {
	if !samePath(f, path) {
		return errReopen
	}
	tmp, err := buildEmpty(path)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rebuild state file %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// buildEmpty writes a new state file with the schema and no run in a fresh
// temporary file beside path, and returns its name.
func buildEmpty(path string) (string, error) {
	var r [6]byte
	_, _ = rand.Read(r[:])
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new-"+hex.EncodeToString(r[:]))
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{
		FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			return os.OpenFile(name, flag|os.O_EXCL|syscall.O_NOFOLLOW, mode)
		},
	})
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("create state file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range append([][]byte{bucketMeta}, dataBuckets...) {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("create state file %s: %w", path, err)
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// samePath reports whether path still names the file f is open on.
func samePath(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, pi)
}

// initPages is the size of the file bbolt writes, in one write, when it
// creates a database: two meta pages, an empty freelist, an empty root.
const initPages = 4

// holdsNoRun reports whether a file that is not a valid state file is one
// whose creation was cut short, so that it holds no run and may be rebuilt:
// empty, zeros only within bbolt's initial pages, or a prefix of (or all
// of) the pages bbolt writes when it creates a file, before any commit
// (meta 0 with transaction 0, meta 1 with transaction 1, 4 pages). A file
// that ever held a commit has a meta page with a higher transaction id and
// is never taken for one.
func holdsNoRun(f io.ReaderAt, size int64) bool {
	if size == 0 {
		return true
	}
	const maxInit = initPages * 64 << 10 // the largest page size bbolt picks for a new file
	if size > maxInit {
		return false
	}
	head := make([]byte, size)
	if _, err := f.ReadAt(head, 0); err != nil {
		return false
	}
	if size <= initPages*4096 && allZero(head) {
		return true
	}
	if size < pageHeaderSize+metaSize {
		return isMetaPrefix(head)
	}
	m0, err := readMeta(f, 0)
	if err != nil || m0.txid != 0 || m0.pgid != initPages || size > int64(initPages*m0.pageSize) {
		return false
	}
	off := int64(m0.pageSize)
	switch {
	case size < off+pageHeaderSize+metaSize:
		return true // meta 1 not written in full
	case allZero(head[off : off+pageHeaderSize+metaSize]):
		return true
	}
	m1, err := readMeta(f, off)
	return err == nil && m1.txid == 1 && m1.pgid == initPages
}

// isMetaPrefix reports whether b is the start of the meta page 0 bbolt
// writes: page id 0, the meta flag, no count nor overflow, magic, version.
func isMetaPrefix(b []byte) bool {
	var want [24]byte
	want[8] = 0x04 // meta page flag
	binary.LittleEndian.PutUint32(want[16:], boltMagic)
	binary.LittleEndian.PutUint32(want[20:], boltVersion)
	n := min(len(b), len(want))
	return bytes.Equal(b[:n], want[:n])
}

func allZero(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}
