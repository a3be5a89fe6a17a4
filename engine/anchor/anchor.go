// Package anchor records a run's journal head outside the state file and
// checks a journal against such records.
//
// The state file's hash chain catches any change to an entry unless the
// whole chain and its head are recomputed, which anyone who can write the
// file and read the format can do. An anchor is a line written where that
// person cannot rewrite it (an append-only file on a WORM share, a webhook
// of a log service): the run, the sequence number of its last entry and
// that entry's hash. A journal rewritten before that entry no longer has
// that hash there, and one cut short no longer reaches it: Check says so.
// With a key (REPRISE_ANCHOR_KEY), each anchor carries an HMAC-SHA256, so
// that anchors kept beside the state file (its JSON log) cannot be forged
// either without the key.
//
// Failure: Write returns an error (the file cannot be appended to, the
// webhook does not answer 2xx within its timeout); the caller decides how
// loud. Read skips lines that are not anchors, so a JSON log can be read as
// a source.
package anchor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// Kind is the value of an anchor line's "anchor" field.
const Kind = "reprise-journal-head"

// Anchor is one record of a run's journal head.
type Anchor struct {
	Kind  string    `json:"anchor"`
	State string    `json:"state,omitempty"` // the state file, for the reader
	Run   string    `json:"run"`
	Seq   uint64    `json:"seq"`
	Hash  string    `json:"hash"`
	Time  time.Time `json:"time"`
	MAC   string    `json:"mac,omitempty"` // hex HMAC-SHA256 of run, seq and hash, with the key
}

// New returns the anchor of a journal head, signed with key when not empty.
func New(statePath, runID string, seq uint64, hash string, key []byte) Anchor {
	a := Anchor{Kind: Kind, State: statePath, Run: runID, Seq: seq, Hash: hash, Time: time.Now().UTC()}
	if len(key) > 0 {
		a.MAC = mac(key, a)
	}
	return a
}

func mac(key []byte, a Anchor) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s\n%d\n%s\n", a.Run, a.Seq, a.Hash)
	return hex.EncodeToString(m.Sum(nil))
}

// KeyFromEnv returns the anchor key from REPRISE_ANCHOR_KEY (nil if unset).
func KeyFromEnv() []byte {
	if k := os.Getenv("REPRISE_ANCHOR_KEY"); k != "" {
		return []byte(k)
	}
	return nil
}

// isURL reports whether dest is a webhook rather than a file.
func isURL(dest string) bool {
	return strings.HasPrefix(dest, "http://") || strings.HasPrefix(dest, "https://")
}

// timeout bounds a webhook call.
const timeout = 10 * time.Second

// Write appends a to dest: a file, opened with O_APPEND (created 0600, no
// symlink followed) and fsync'ed, or an http(s) URL, to which it is POSTed
// as JSON (any 2xx answer is success).
func Write(ctx context.Context, dest string, a Anchor) error {
	line, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("anchor %s: %w", dest, err)
	}
	if isURL(dest) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest, bytes.NewReader(line))
		if err != nil {
			return fmt.Errorf("anchor %s: %w", dest, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("anchor %s: %w", dest, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("anchor %s: the webhook answered %s", dest, resp.Status)
		}
		return nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("anchor %s: %w", dest, err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("anchor %s: %w", dest, err)
	}
	return nil
}

// Read returns the anchors found at src: a file (an anchor file, a JSON log
// holding anchor lines among others, or a saved JSON report, whose journal
// head is one) or an http(s) URL answering a GET with anchor lines. A
// missing file has none.
func Read(ctx context.Context, src string) ([]Anchor, error) {
	var r io.Reader
	if isURL(src) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("read anchors %s: %w", src, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("read anchors %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("read anchors %s: the server answered %s", src, resp.Status)
		}
		r = resp.Body
	} else {
		f, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read anchors %s: %w", src, err)
		}
		defer f.Close()
		r = f
	}
	var out []Anchor
	br := bufio.NewReaderSize(r, 1<<16)
	marker := []byte(`"anchor":"` + Kind + `"`)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line (a log line of a chatty step) is no anchor.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if bytes.Contains(line, marker) {
			var a Anchor
			if json.Unmarshal(line, &a) == nil && a.Kind == Kind {
				out = append(out, a)
			}
		}
		if err == io.EOF {
			if len(out) == 0 && !isURL(src) {
				return fromReport(src)
			}
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read anchors %s: %w", src, err)
		}
	}
}

// Report is what Check found.
type Report struct {
	Checked int    // anchors of the run compared with its journal
	OK      bool   // the journal agrees with every one
	Seq     uint64 // the highest anchored sequence number
	Problem string // the first disagreement
}

// Check compares the journal of run runID, streamed by journal (a
// state.Store's or control.Client's Journal), with the anchors of that run:
// each anchored entry must still be there with the anchored hash. With a
// key, an anchor without a valid MAC is a problem too (a forged line).
func Check(anchors []Anchor, runID string, key []byte, journal func(runID string, afterSeq uint64, fn func(state.Entry) error) error) (Report, error) {
	rep := Report{OK: true}
	want := map[uint64]Anchor{}
	for _, a := range anchors {
		if a.Run != runID {
			continue
		}
		if len(key) > 0 && !hmac.Equal([]byte(a.MAC), []byte(mac(key, a))) {
			rep.OK, rep.Problem = false, fmt.Sprintf("the anchor of entry %d written %s has no valid MAC for the key: forged or written without the key", a.Seq, a.Time.Format(time.RFC3339))
			return rep, nil
		}
		rep.Checked++
		want[a.Seq] = a
		rep.Seq = max(rep.Seq, a.Seq)
	}
	if rep.Checked == 0 {
		return rep, nil
	}
	var last uint64
	err := journal(runID, 0, func(e state.Entry) error {
		last = e.Seq
		if a, ok := want[e.Seq]; ok && a.Hash != e.Hash && rep.OK {
			rep.OK, rep.Problem = false, fmt.Sprintf("entry %d has hash %.12s…, but the anchor written %s recorded %.12s…: the journal was rewritten",
				e.Seq, e.Hash, a.Time.Format(time.RFC3339), a.Hash)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if rep.OK && last < rep.Seq {
		a := want[rep.Seq]
		rep.OK, rep.Problem = false, "the journal ends at entry "+strconv.FormatUint(last, 10)+", but the anchor written "+
			a.Time.Format(time.RFC3339)+" recorded entry "+strconv.FormatUint(a.Seq, 10)+": entries were removed"
	}
	return rep, nil
}

// fromReport reads the anchor a saved report holds (`reprise report
// --format json`: run.id, journal.head and journal.head_seq), if src is one.
func fromReport(src string) ([]Anchor, error) {
	f, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("read anchors %s: %w", src, err)
	}
	defer f.Close()
	var rep struct {
		Generated time.Time `json:"generated"`
		Run       struct {
			ID string `json:"id"`
		} `json:"run"`
		Journal struct {
			Head    string `json:"head"`
			HeadSeq uint64 `json:"head_seq"`
		} `json:"journal"`
	}
	if json.NewDecoder(io.LimitReader(f, 256<<20)).Decode(&rep) != nil || rep.Run.ID == "" || rep.Journal.Head == "" || rep.Journal.HeadSeq == 0 {
		return nil, nil
	}
	return []Anchor{{Kind: Kind, Run: rep.Run.ID, Seq: rep.Journal.HeadSeq, Hash: rep.Journal.Head, Time: rep.Generated}}, nil
}
