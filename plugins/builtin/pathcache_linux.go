package builtin

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// lookPath finds a bare program name in the plugin's PATH, as exec.LookPath
// does and with the same answer, but remembers it: a lookup in a long PATH
// is a stat per folder before the one that has the program (eleven for
// `true` on the machine the benchmarks ran on), for every command.
//
// An answer is used again only while nothing that could change it has
// changed, which inotify tells without looking: every PATH folder up to
// the one that had the program is watched for any entry created, removed,
// renamed or changed (mode, owner), and so is each folder on the way to it
// for the next name on the way; the program file itself is watched for its
// mode, owner, removal and renaming (through any of its links); and the
// mount table for any change. Each use of a remembered answer first reads
// what inotify and the mount table queued (one epoll_wait): queued events
// are queued by the changes themselves, before they return, so a change
// made before a command starts is always seen. Anything seen, however
// harmless, forgets every answer. What cannot be watched that way is never
// remembered: PATH folders on the way through a symbolic link, relative
// folders, a folder before the program's that has an entry of that name
// (an executable one would have won; another could become one), and a
// program that is a symbolic link is checked again (a stat) at every use.
// Without inotify every lookup is exec.LookPath.
func lookPath(name string) (string, error) { return programs.lookup(name) }

var programs = pathCache{ep: -1, ino: -1, mounts: -1}

// pathCache is lookPath's memory, for one PATH value; safe for concurrent
// use (one lock: a remembered answer costs one system call under it).
type pathCache struct {
	mu      sync.Mutex
	path    string // the PATH it was set up for
	set     bool   // set up (or tried to) for path
	ep      int    // epoll over ino and mounts; -1: no cache
	ino     int    // the inotify instance
	mounts  int    // /proc/self/mountinfo, which polls PRI when mounts change
	valid   bool   // watches set and nothing seen since
	safe    int    // how many PATH folders, from the first, can be watched
	watches map[int32]*watched
	found   map[string]foundProgram
	fills   int // lookups that were not remembered (tests)
}

// watched is what an inotify watch is for.
type watched struct {
	all   bool            // a PATH folder: any entry counts
	names map[string]bool // else: the entries that count
}

// foundProgram is a remembered answer.
type foundProgram struct {
	path    string
	symlink bool // checked again at each use: its target is not watched
}

// dirMask is what a watched folder reports: its entries appearing,
// disappearing or changing mode or owner, and its own removal, renaming
// and changes. It refuses a symbolic link.
const dirMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
	syscall.IN_ATTRIB | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR | syscall.IN_DONT_FOLLOW

// fileMask is what a watched program file reports.
const fileMask = syscall.IN_ATTRIB | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_DONT_FOLLOW

func (c *pathCache) lookup(name string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := os.Getenv("PATH"); !c.set || p != c.path {
		c.setUp(p)
	}
	if c.ep < 0 {
		return exec.LookPath(name)
	}
	if !c.valid || !c.unchanged() {
		c.rewatch()
	}
	if f, ok := c.found[name]; ok {
		if !f.symlink {
			return f.path, nil
		}
		if _, err := exec.LookPath(f.path); err == nil {
			return f.path, nil
		}
		delete(c.found, name)
	}
	c.fills++
	path, err := exec.LookPath(name)
	if err == nil && c.valid && c.rememberable(name, path) {
		c.found[name] = foundProgram{path: path, symlink: isSymlink(path)}
	}
	return path, err
}

// setUp starts over for PATH value p: a new inotify instance (the old
// one's watches go with it) and the mount table.
func (c *pathCache) setUp(p string) {
	c.close()
	c.path, c.set = p, true
	ino, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return
	}
	mounts, err := syscall.Open("/proc/self/mountinfo", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = syscall.Close(ino)
		return
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err == nil {
		err = syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, ino, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(ino)})
	}
	if err == nil {
		err = syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, mounts, &syscall.EpollEvent{Events: syscall.EPOLLPRI, Fd: int32(mounts)})
	}
	if err != nil {
		_ = syscall.Close(ino)
		_ = syscall.Close(mounts)
		if ep >= 0 {
			_ = syscall.Close(ep)
		}
		return
	}
	c.ep, c.ino, c.mounts = ep, ino, mounts
	c.watches = map[int32]*watched{}
	c.found = map[string]foundProgram{}
}

func (c *pathCache) close() {
	for _, fd := range []int{c.ep, c.ino, c.mounts} {
		if fd >= 0 {
			_ = syscall.Close(fd)
		}
	}
	c.ep, c.ino, c.mounts = -1, -1, -1
	c.valid, c.watches, c.found = false, nil, nil
}

// rewatch forgets every answer and (re)sets the watches of the PATH
// folders and of the folders on the way to them (a folder made since the
// last time gets its own). Events queued by then are dropped: the lookups
// that follow look at the file system as it is now.
func (c *pathCache) rewatch() {
	clear(c.found)
	c.safe = 0
	for _, dir := range filepath.SplitList(c.path) {
		if dir == "" || !filepath.IsAbs(dir) || !c.watchDir(filepath.Clean(dir)) {
			break
		}
		c.safe++
	}
	c.drop()
	c.valid = true
}

// watchDir watches dir and each folder on the way to it (for the next name
// on the way), from the root down to the first that is missing. It reports
// false when the way cannot be watched (a symbolic link, no permission, no
// watches left).
func (c *pathCache) watchDir(dir string) bool {
	names := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	if dir == "/" {
		names = nil
	}
	at := "/"
	for i := 0; ; i++ {
		wd, err := syscall.InotifyAddWatch(c.ino, at, dirMask)
		switch {
		case err == syscall.ENOENT:
			return true // missing: its parent's watch sees it made
		case err == syscall.ENOTDIR:
			return !isSymlink(at) // a file where a folder would be: seen as for a missing one
		case err != nil:
			return false
		}
		w := c.watches[int32(wd)]
		if w == nil {
			w = &watched{names: map[string]bool{}}
			c.watches[int32(wd)] = w
		}
		if i == len(names) {
			w.all = true
			return true
		}
		w.names[names[i]] = true
		at = filepath.Join(at, names[i])
	}
}

// rememberable reports whether the answer path for name can be watched:
// found in a watchable PATH folder, with no entry of that name in the
// folders before it, and (a regular file) watched itself, then still the
// answer.
func (c *pathCache) rememberable(name, path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	at := -1
	for i, dir := range filepath.SplitList(c.path) {
		p := filepath.Join(dir, name)
		if p == path {
			at = i
			break
		}
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return false
		}
	}
	if at < 0 || at >= c.safe {
		return false
	}
	if isSymlink(path) {
		return true
	}
	if _, err := syscall.InotifyAddWatch(c.ino, path, fileMask); err != nil {
		return false
	}
	// The file's own watch came after the lookup: look at it once more.
	if _, err := exec.LookPath(path); err != nil {
		return false
	}
	return c.unchanged()
}

// unchanged reports whether nothing was queued that could change an
// answer, reading what was (an unknown event counts as a change); when
// something was, every answer is forgotten at the next lookup.
func (c *pathCache) unchanged() bool {
	var evs [2]syscall.EpollEvent
	n, err := syscall.EpollWait(c.ep, evs[:], 0)
	if err != nil {
		c.valid = false
		return false
	}
	ok := true
	for _, ev := range evs[:n] {
		if ev.Fd != int32(c.ino) {
			ok = false // the mount table changed
			continue
		}
		if !c.readEvents() {
			ok = false
		}
	}
	if !ok {
		c.valid = false
	}
	return ok
}

// drop reads and forgets what inotify and the mount table queued.
func (c *pathCache) drop() {
	var evs [2]syscall.EpollEvent
	if n, err := syscall.EpollWait(c.ep, evs[:], 0); err == nil && n > 0 {
		c.readEvents()
	}
}

// readEvents reads every queued inotify event and reports whether none of
// them could change an answer.
func (c *pathCache) readEvents() bool {
	var buf [4096]byte
	ok := true
	for {
		n, err := syscall.Read(c.ino, buf[:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return ok // EAGAIN: nothing more
		}
		for b := buf[:n]; len(b) >= syscall.SizeofInotifyEvent; {
			wd := int32(binary.NativeEndian.Uint32(b[0:]))
			mask := binary.NativeEndian.Uint32(b[4:])
			size := int(binary.NativeEndian.Uint32(b[12:]))
			end := min(syscall.SizeofInotifyEvent+size, len(b))
			name := strings.TrimRight(string(b[syscall.SizeofInotifyEvent:end]), "\x00")
			b = b[end:]
			if !c.harmless(wd, mask, name) {
				ok = false
			}
		}
	}
}

// harmless reports whether an event leaves every answer as it was: an
// event in a folder on the way to a PATH folder about another name.
func (c *pathCache) harmless(wd int32, mask uint32, name string) bool {
	w := c.watches[wd]
	if mask&syscall.IN_IGNORED != 0 {
		delete(c.watches, wd)
		return false
	}
	if w == nil || mask&syscall.IN_Q_OVERFLOW != 0 || name == "" || w.all {
		return false
	}
	return !w.names[name]
}

func isSymlink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}
