package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
)

// Scan scans the folder root with the named scanners (every scanner of the
// set when names is empty) and returns the verdict. The built-in scanners
// read each regular file once, on Options.Workers goroutines, while the
// external commands run beside them. An error means the scan could not be
// made (unknown scanner, root unreadable, a command failed, ctx done): it
// is never a verdict.
func (s *Set) Scan(ctx context.Context, root string, names ...string) (Result, error) {
	specs, err := s.pick(names)
	if err != nil {
		return Result{}, err
	}
	if _, err := os.Stat(root); err != nil {
		return Result{}, fmt.Errorf("scan %s: %w", root, err)
	}
	workers := s.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	c := newCollector(specs, s.opts.MaxFindings)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	extErr := make([]error, len(specs))
	for i, sp := range specs {
		if sp.Type != TypeYARA && sp.Type != TypeClamAV {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fs []Finding
			var err error
			if sp.Type == TypeYARA {
				fs, err = runYARA(ctx, sp, root, workers)
			} else {
				fs, err = runClamAV(ctx, sp, root)
			}
			if err != nil {
				extErr[i] = fmt.Errorf("scanner %q: %w", sp.Name, err)
				cancel()
				return
			}
			for _, f := range fs {
				c.add(i, f)
			}
		}()
	}
	var walkErr error
	if c.builtin() {
		walkErr = s.walk(ctx, root, workers, c)
	}
	wg.Wait()
	if err := errors.Join(append(extErr, walkErr)...); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return c.result(), nil
}

// pick returns the specs named (all of them for none).
func (s *Set) pick(names []string) ([]Spec, error) {
	if len(names) == 0 {
		return s.specs, nil
	}
	out := make([]Spec, 0, len(names))
	for _, n := range names {
		found := false
		for _, sp := range s.specs {
			if sp.Name == n {
				out = append(out, sp)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: unknown scanner %q", ErrBadSpec, n)
		}
	}
	return out, nil
}

type job struct{ path, rel string }

// walk streams every regular file under root to the workers.
func (s *Set) walk(ctx context.Context, root string, workers int, c *collector) error {
	jobs := make(chan job, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{set: s, c: c, buf: make([]byte, 256<<10), h: sha256.New()}
			for j := range jobs {
				w.file(j)
			}
		}()
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			c.unreadable(relOf(root, p), err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // folders are walked; links, devices, sockets are not read
		}
		select {
		case jobs <- job{path: p, rel: relOf(root, p)}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("scan %s: %w", root, err)
	}
	return nil
}

func relOf(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." {
		r = filepath.Base(p)
	}
	return filepath.ToSlash(r)
}

// worker reads files for the built-in scanners; one per goroutine.
type worker struct {
	set *Set
	c   *collector
	buf []byte
	h   hash.Hash
	sum [32]byte
}

func (w *worker) file(j job) {
	c := w.c
	for _, i := range c.nameIdx {
		if p := matchName(c.specs[i].Names, filepath.Base(j.path)); p != "" {
			c.add(i, Finding{File: j.rel, Rule: p, Verdict: Encrypted, Detail: "file name of a ransom note"})
		}
	}
	if len(c.hashIdx) == 0 && len(c.entIdx) == 0 {
		c.count(0)
		return
	}
	f, err := os.Open(j.path)
	if err != nil {
		c.unreadable(j.rel, err)
		return
	}
	defer f.Close()
	n, err := io.ReadFull(f, w.buf[:EntropySample])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		c.unreadable(j.rel, err)
		return
	}
	head := w.buf[:n]
	if len(c.entIdx) > 0 && n >= MinEntropySize {
		w.entropy(j.rel, head)
	}
	total := int64(n)
	if len(c.hashIdx) == 0 {
		if n == EntropySample {
			if st, err := f.Stat(); err == nil {
				total = st.Size()
			}
		}
		c.count(total)
		return
	}
	w.h.Reset()
	w.h.Write(head)
	if n == EntropySample {
		m, err := io.CopyBuffer(w.h, onlyReader{f}, w.buf)
		total += m
		if err != nil {
			c.unreadable(j.rel, err)
			return
		}
	}
	w.h.Sum(w.sum[:0])
	c.count(total)
	if _, bad := w.set.hashes[w.sum]; bad {
		hx := hex.EncodeToString(w.sum[:])
		for _, i := range c.hashIdx {
			if w.set.listedBy(w.sum, c.specs[i].Name) {
				c.add(i, Finding{File: j.rel, Rule: hx, Verdict: Compromised, Detail: "SHA-256 on a hash list"})
			}
		}
	}
}

// onlyReader hides *os.File's WriterTo so that CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }

func (w *worker) entropy(rel string, head []byte) {
	format := knownFormat(head)
	e := 0.0
	if format == "" {
		e = entropy(head)
	}
	for _, i := range w.c.entIdx {
		min := w.c.specs[i].MinEntropy
		if min == 0 {
			min = DefaultMinEntropy
		}
		enc := format == "" && e >= min
		w.c.examined(i, enc)
		if enc {
			w.c.add(i, Finding{File: rel, Rule: "entropy", Verdict: Encrypted,
				Detail: fmt.Sprintf("%.2f bits per byte, no known compressed format", e)})
		}
	}
}

// listedBy reports whether the scanner named lists the hash.
func (s *Set) listedBy(h [32]byte, name string) bool {
	for _, i := range s.owners[h] {
		if s.specs[i].Name == name {
			return true
		}
	}
	return false
}

// collector gathers findings and counters from every worker.
type collector struct {
	specs            []Spec
	max              int
	nameIdx, hashIdx []int // ioc scanners with name patterns, with hash lists
	entIdx           []int

	mu       sync.Mutex
	findings [][]Finding
	counts   []int
	exam     []int64
	enc      []int64
	files    int64
	bytes    int64
	read     []Finding // unreadable files
	readN    int
}

func newCollector(specs []Spec, max int) *collector {
	if max <= 0 {
		max = 100
	}
	c := &collector{specs: specs, max: max, findings: make([][]Finding, len(specs)),
		counts: make([]int, len(specs)), exam: make([]int64, len(specs)), enc: make([]int64, len(specs))}
	for i, sp := range specs {
		switch sp.Type {
		case TypeIOC:
			if len(sp.Names) > 0 {
				c.nameIdx = append(c.nameIdx, i)
			}
			if len(sp.HashLists) > 0 {
				c.hashIdx = append(c.hashIdx, i)
			}
		case TypeEntropy:
			c.entIdx = append(c.entIdx, i)
		}
	}
	return c
}

func (c *collector) builtin() bool {
	for _, sp := range c.specs {
		if sp.Type == TypeIOC || sp.Type == TypeEntropy {
			return true
		}
	}
	return false
}

func (c *collector) add(i int, f Finding) {
	f.Scanner, f.Type = c.specs[i].Name, c.specs[i].Type
	c.mu.Lock()
	c.counts[i]++
	if len(c.findings[i]) < c.max {
		c.findings[i] = append(c.findings[i], f)
	}
	c.mu.Unlock()
}

func (c *collector) count(bytes int64) {
	c.mu.Lock()
	c.files++
	c.bytes += bytes
	c.mu.Unlock()
}

func (c *collector) examined(i int, enc bool) {
	c.mu.Lock()
	c.exam[i]++
	if enc {
		c.enc[i]++
	}
	c.mu.Unlock()
}

func (c *collector) unreadable(rel string, err error) {
	c.mu.Lock()
	c.readN++
	if len(c.read) < c.max {
		c.read = append(c.read, Finding{File: rel, Scanner: "read", Type: "read", Rule: "unreadable",
			Verdict: Suspicious, Detail: err.Error()})
	}
	c.mu.Unlock()
}

// result turns the counters into verdicts.
func (c *collector) result() Result {
	r := Result{Verdict: Clean, Files: c.files, Bytes: c.bytes}
	for i, sp := range c.specs {
		sr := ScannerResult{Name: sp.Name, Type: sp.Type, Verdict: Clean, Findings: c.counts[i]}
		for _, f := range c.findings[i] {
			sr.Verdict = Worst(sr.Verdict, f.Verdict)
		}
		switch sp.Type {
		case TypeEntropy:
			t := sp.Threshold
			if t == 0 {
				t = DefaultThreshold
			}
			share := 0.0
			if c.exam[i] > 0 {
				share = float64(c.enc[i]) / float64(c.exam[i])
			}
			switch {
			case c.enc[i] > 0 && share >= t:
				sr.Verdict = Encrypted
			case c.enc[i] > 0:
				sr.Verdict = Suspicious
			}
			sr.Summary = fmt.Sprintf("%d of %d files look encrypted (%.1f%%, threshold %.1f%%)", c.enc[i], c.exam[i], 100*share, 100*t)
			for j := range c.findings[i] {
				c.findings[i][j].Verdict = sr.Verdict
			}
		case TypeIOC:
			sr.Summary = fmt.Sprintf("%d files checked, %d matches", c.files, c.counts[i])
		default:
			sr.Summary = fmt.Sprintf("%d matches", c.counts[i])
		}
		r.Verdict = Worst(r.Verdict, sr.Verdict)
		r.Scanners = append(r.Scanners, sr)
		r.Findings = append(r.Findings, c.findings[i]...)
	}
	if c.readN > 0 {
		r.Scanners = append(r.Scanners, ScannerResult{Name: "read", Type: "read", Verdict: Suspicious,
			Findings: c.readN, Summary: fmt.Sprintf("%d files could not be read", c.readN)})
		r.Verdict = Worst(r.Verdict, Suspicious)
		r.Findings = append(r.Findings, c.read...)
	}
	sort.SliceStable(r.Findings, func(a, b int) bool {
		fa, fb := r.Findings[a], r.Findings[b]
		if fa.File != fb.File {
			return fa.File < fb.File
		}
		return fa.Scanner < fb.Scanner
	})
	return r
}
