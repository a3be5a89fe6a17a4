package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// pinnedCopy is the verified private copy of a pinned plugin binary: the
// bytes that were hashed, in a folder only this process's user can write
// (0700), started instead of the declared path so that nothing can swap the
// file between the check and the exec. One copy per plugin and host, made
// once and removed by Close.
type pinnedCopy struct {
	once sync.Once
	path string // the copy
	dir  string // its private folder
	err  error
}

// verifyPin returns the path of the verified private copy of plugin name's
// binary at path, pinned to sha256 want (hex). The check is made once per
// host; a failed one is not kept (the next start checks again).
func (h *Host) verifyPin(name, path, want string) (string, error) {
	h.mu.Lock()
	pc := h.pins[name]
	if pc == nil {
		pc = &pinnedCopy{}
		h.pins[name] = pc
	}
	h.mu.Unlock()
	pc.once.Do(func() { pc.path, pc.dir, pc.err = copyVerified(name, path, want) })
	if pc.err != nil {
		h.mu.Lock()
		if h.pins[name] == pc {
			delete(h.pins, name)
		}
		h.mu.Unlock()
	}
	return pc.path, pc.err
}

// copyVerified copies the file at path into a new private folder, hashing
// the bytes as they are copied, and returns the copy when they match want.
func copyVerified(name, path, want string) (copyPath, dir string, err error) {
	wantSum, derr := hex.DecodeString(want)
	if derr != nil || len(wantSum) != sha256.Size {
		return "", "", &PluginError{Plugin: name, Path: path, Err: ErrChecksum,
			Detail: fmt.Sprintf("pinned sha256 %q is not 64 hex digits", want)}
	}
	src, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", &PluginError{Plugin: name, Path: path, Err: ErrNotFound}
		}
		return "", "", &PluginError{Plugin: name, Path: path, Err: ErrNotFound, Detail: err.Error()}
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "", "", &PluginError{Plugin: name, Path: path, Err: ErrNotExecutable, Detail: "not a regular file"}
	}
	dir, err = os.MkdirTemp("", "reprise-plugin-")
	if err != nil {
		return "", "", &PluginError{Plugin: name, Path: path, Err: ErrNotExecutable, Detail: "make a private copy: " + err.Error()}
	}
	copyPath = filepath.Join(dir, filepath.Base(path))
	fail := func(e error) (string, string, error) {
		_ = os.RemoveAll(dir)
		return "", "", e
	}
	dst, err := os.OpenFile(copyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return fail(&PluginError{Plugin: name, Path: path, Err: ErrNotExecutable, Detail: "make a private copy: " + err.Error()})
	}
	hash := sha256.New()
	_, err = io.Copy(io.MultiWriter(dst, hash), src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(&PluginError{Plugin: name, Path: path, Err: ErrNotExecutable, Detail: "make a private copy: " + err.Error()})
	}
	actual := hex.EncodeToString(hash.Sum(nil))
	if actual != strings.ToLower(want) {
		return fail(&PluginError{Plugin: name, Path: path, Err: ErrChecksum,
			Detail: fmt.Sprintf("expected sha256 %s, actual %s (the binary changed since it was pinned; check it, then update the graph's sha256)", strings.ToLower(want), actual)})
	}
	return copyPath, dir, nil
}

// CheckPins checks, before a run starts anything, every plugin among names
// that the graph declares: its binary exists and is executable, and a
// pinned one matches its sha256 (its verified copy is then what every start
// of it runs). Built-in and unknown names are left to the calls. The errors
// are PluginErrors, joined; all of them are permanent.
func (h *Host) CheckPins(ctx context.Context, names []string) error {
	seen := map[string]bool{}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, name := range names {
		ref, ok := h.opts.Plugins[name]
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := resolvePath(h.opts.GraphDir, ref.Path)
			err := checkBinary(name, path)
			if err == nil && ref.SHA256 != "" {
				_, err = h.verifyPin(name, path, ref.SHA256)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// removePins deletes the private copies; the processes are gone.
func (h *Host) removePins() {
	h.mu.Lock()
	pins := h.pins
	h.pins = map[string]*pinnedCopy{}
	h.mu.Unlock()
	for _, pc := range pins {
		pc.once.Do(func() {}) // a check in progress has ended
		if pc.dir != "" {
			_ = os.RemoveAll(pc.dir)
		}
	}
}
