package state

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeEntry decodes stored entry bytes into e (whose fields must be
// zero), giving the same Entry as encoding/json's Unmarshal would. Entries
// in the exact form appendEntryJSON writes (see parseEntry) are read by
// hand, several times quicker: resume and retry read every entry of a run
// (Verify), `log` and views every entry they show. Anything else — an
// entry written by hand, an escape in a string — goes through encoding/json.
func decodeEntry(b []byte, e *Entry) error {
	if parseEntry(b, e) {
		return nil
	}
	*e = Entry{}
	return json.Unmarshal(b, e)
}

// parseEntry reads b into e when b is, byte for byte, what appendEntryJSON
// writes for e, with no escape in any string: fields in their order, each
// omitted exactly when it is empty, data keys sorted and distinct, numbers
// and the time in their canonical form. It reports false for anything else,
// with e partly filled. Whenever it reports true, encoding/json decodes b to
// the same Entry (FuzzParseEntry holds them equal): the language it accepts
// is a subset of encoding/json's with one meaning for each input, so a
// crafted entry cannot make Verify read something `log` does not show.
func parseEntry(b []byte, e *Entry) bool { return parseEntryAs(b, e, false) }

// parseEntryAs is parseEntry; light leaves out Message, By, Prev and Hash
// (still read and checked), which Verify does not need.
func parseEntryAs(b []byte, e *Entry, light bool) bool {
	p := entryParser{b: b}
	if !p.lit(`{"seq":`) {
		return false
	}
	var ok bool
	if e.Seq, ok = p.uint(); !ok {
		return false
	}
	if p.lit(`,"time":`) {
		raw, ok := p.str()
		if !ok {
			return false
		}
		t, ok := parseUTC(raw)
		if !ok {
			var err error
			t, err = time.Parse(time.RFC3339Nano, string(raw))
			var buf [48]byte
			if err != nil || !bytes.Equal(t.AppendFormat(buf[:0], time.RFC3339Nano), raw) {
				return false
			}
		}
		if t.IsZero() {
			return false
		}
		e.Time = t
	}
	if !p.lit(`,"type":`) {
		return false
	}
	typ, ok := p.str()
	if !ok {
		return false
	}
	e.Type = EntryType(internType(typ))
	if e.NodeID, ok = p.optional(`,"node":`); !ok {
		return false
	}
	if p.lit(`,"state":`) {
		st, ok := p.str()
		if !ok || len(st) == 0 {
			return false
		}
		e.State = NodeState(internType(st))
	}
	if p.lit(`,"attempt":`) {
		n, ok := p.int()
		if !ok || n == 0 {
			return false
		}
		e.Attempt = n
	}
	var msg, by string
	if msg, ok = p.optionalAs(`,"msg":`, light); !ok {
		return false
	}
	if by, ok = p.optionalAs(`,"by":`, light); !ok {
		return false
	}
	e.Message, e.By = msg, by
	if p.lit(`,"data":{`) {
		if e.Data, ok = p.data(); !ok {
			return false
		}
	}
	if e.Record, ok = p.optional(`,"record":`); !ok {
		return false
	}
	if !p.lit(`,"prev":`) {
		return false
	}
	prev, ok := p.str()
	if !ok || !p.lit(`,"hash":`) {
		return false
	}
	hash, ok := p.str()
	if !ok || !p.lit(`}`) || p.i != len(p.b) {
		return false
	}
	if !light {
		e.Prev, e.Hash = string(prev), string(hash)
	}
	return true
}

// parseUTC reads a time in UTC as time.RFC3339Nano formats it
// ("2026-11-28T20:35:12.123Z": four-digit year, fraction without trailing
// zeros, Z) without time.Parse; any other form reports false.
func parseUTC(b []byte) (time.Time, bool) {
	const min = len("2006-01-02T15:04:05Z")
	if len(b) < min || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	if d > 28 && d > time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	ns := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' || frac[len(frac)-1] == '0' {
			return time.Time{}, false
		}
		n, ok := num(20, len(b)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		ns = n
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC), true
}

// entryParser reads the canonical entry encoding; every method reports
// false, never panics, on anything else.
type entryParser struct {
	b []byte
	i int
}

// lit consumes s if the input goes on with it.
func (p *entryParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str reads a string that needs no escape in JSON as appendJSONString
// writes it: printable ASCII but ", \, <, > and &, and valid UTF-8 but
// U+2028 and U+2029. It returns the bytes between the quotes.
func (p *entryParser) str() ([]byte, bool) {
	if !p.lit(`"`) {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				s := p.b[start:p.i]
				p.i++
				return s, true
			case c < 0x20 || c == '\\' || c == '<' || c == '>' || c == '&':
				return nil, false
			}
			p.i++
			continue
		}
		r, size := utf8.DecodeRune(p.b[p.i:])
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return nil, false
		}
		p.i += size
	}
	return nil, false
}

// optional reads the field key, if present, and its value, which must not
// be empty (appendEntryJSON leaves an empty one out).
func (p *entryParser) optional(key string) (string, bool) { return p.optionalAs(key, false) }

// optionalAs is optional; skip checks the value but returns "".
func (p *entryParser) optionalAs(key string, skip bool) (string, bool) {
	if !p.lit(key) {
		return "", true
	}
	s, ok := p.str()
	if !ok || len(s) == 0 {
		return "", false
	}
	if skip {
		return "", true
	}
	return string(s), true
}

// digits reads a canonical decimal number: no leading zero but in "0".
func (p *entryParser) digits() ([]byte, bool) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	d := p.b[start:p.i]
	if len(d) == 0 || (d[0] == '0' && len(d) > 1) {
		return nil, false
	}
	return d, true
}

func (p *entryParser) uint() (uint64, bool) {
	d, ok := p.digits()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d), 10, 64)
	return n, err == nil
}

func (p *entryParser) int() (int, bool) {
	neg := p.lit("-")
	d, ok := p.digits()
	if !ok || (neg && string(d) == "0") {
		return 0, false
	}
	s := string(d)
	if neg {
		s = "-" + s
	}
	n, err := strconv.ParseInt(s, 10, strconv.IntSize)
	return int(n), err == nil
}

// data reads the pairs of a data object after its `{`: at least one, keys
// in increasing byte order (sorted, none twice), then `}`.
func (p *entryParser) data() (map[string]string, bool) {
	m := map[string]string{}
	var last []byte
	for first := true; ; first = false {
		if !first && !p.lit(",") {
			return nil, false
		}
		k, ok := p.str()
		if !ok || (!first && bytes.Compare(k, last) <= 0) || !p.lit(":") {
			return nil, false
		}
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		m[string(k)] = string(v)
		last = k
		if p.lit("}") {
			return m, true
		}
	}
}

// entryTypes are the entry types the engine writes, so that decoding an
// entry does not allocate its type's string.
var entryTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []EntryType{EntryRunCreated, EntryRunStarted, EntryRunResumed, EntryRunFinished, EntryRunParked,
		EntryRunInterrupted, EntryGraphChanged, EntryStarted, EntrySucceeded, EntryFailed, EntryRetrying, EntryBlocked,
		EntryWaiting, EntryApproved, EntryApprovalGiven, EntryMarked, EntryReset, EntryRestored, EntryInterrupted,
		EntrySkipped, EntryCleanedUp, EntryCoordinatorStopped, EntryNotified, EntryNotifyFailed, EntryNodeRemoved, EntryNodeUpdated,
		EntrySnapshotReplaced, EntryRunUpdated, EntryCertified, EntryScanned, EntryPointSkipped, EntryPointChosen, EntryPointOverride} {
		m[string(t)] = string(t)
	}
	for _, s := range []NodeState{NodePending, NodeRunning, NodeSucceeded, NodeFailed, NodeBlocked, NodeWaiting, NodeSkipped} {
		m[string(s)] = string(s)
	}
	return m
}()

// internType returns b as a string, without allocating for a known type or
// state.
func internType(b []byte) string {
	if s, ok := entryTypes[string(b)]; ok {
		return s
	}
	return string(b)
}
