package builtin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// What each command exec runs needs from the file system, made cheap: a
// run of 10,000 short commands spent a fifth of the plugin's time creating
// and removing a temporary file per command (a file created or removed on
// a file system where the state file is synced waits for its journal), and
// opening /dev/null for each command's stdin.

// outputsIdle is how long the outputs folder outlives the last command.
const outputsIdle = 2 * time.Second

// outputsFolder hands out REPRISE_OUTPUT paths in a folder of its own
// (mode 0700, made on first use in the OS temporary folder), where no
// other user can put a file or a link. The file is not made in advance: a
// command that sets outputs creates it (`>> "$REPRISE_OUTPUT"`), most
// commands never do, and a command's outputs file is removed when it is
// done. The folder is removed once no command has used it for outputsIdle,
// and when the plugin stops (Serve).
type outputsFolder struct {
	mu    sync.Mutex
	dir   string // "" when there is none
	users int
	seq   uint64
	idle  *time.Timer
	sweep sync.Once
}

// outputsPrefix starts the outputs folders' names, before the pid of the
// plugin process that made one.
const outputsPrefix = "reprise-exec-"

// sweepOutputs removes the outputs folders that plugin processes killed
// outright left behind: empty, this user's, an hour old, and named after a
// process that no longer exists. A live process of another pid namespace
// sharing the temporary folder could look gone, hence the other conditions:
// its folder is kept while a command writes in it (or within an hour).
func sweepOutputs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), outputsPrefix+"*-*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), outputsPrefix), "-", 2)[0])
		if err != nil || pid == os.Getpid() || processExists(pid) {
			continue
		}
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() && ownedByMe(fi) && time.Since(fi.ModTime()) > time.Hour {
			_ = os.Remove(dir) // an empty folder only
		}
	}
}

var outputs outputsFolder

// take returns a new outputs file path, of a file that does not exist;
// give it back with done.
func (o *outputsFolder) take() (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.idle != nil {
		o.idle.Stop()
	}
	if o.dir == "" {
		o.sweep.Do(sweepOutputs)
		dir, err := os.MkdirTemp("", outputsPrefix+strconv.Itoa(os.Getpid())+"-*")
		if err != nil {
			return "", fmt.Errorf("create outputs folder: %w", err)
		}
		o.dir = dir
	}
	o.seq++
	path := filepath.Join(o.dir, "output-"+strconv.FormatUint(o.seq, 10))
	o.users++
	return path, nil
}

// done removes the outputs file at a path take returned, if the command
// made one, and the folder after outputsIdle without use.
func (o *outputsFolder) done(path string) {
	if err := syscall.Unlink(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.Remove(path) // not a file: a folder, say
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users--
	if o.users > 0 {
		return
	}
	if o.idle == nil {
		o.idle = time.AfterFunc(outputsIdle, o.removeIfIdle)
	} else {
		o.idle.Reset(outputsIdle)
	}
}

func (o *outputsFolder) removeIfIdle() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.users == 0 && o.dir != "" {
		_ = os.RemoveAll(o.dir)
		o.dir = ""
	}
}

// close removes the outputs folder (the plugin stops).
func (o *outputsFolder) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.idle != nil {
		o.idle.Stop()
	}
	if o.dir != "" {
		_ = os.RemoveAll(o.dir)
		o.dir = ""
	}
}

// devNull is /dev/null opened once, every command's stdin.
var devNull = sync.OnceValues(func() (*os.File, error) { return os.Open(os.DevNull) })
