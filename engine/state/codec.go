package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Node records are the hot data of the store: rewritten on every
// transition and read all at once by resume and status. They are stored in
// a compact binary form, about a third of their JSON size and ten times
// quicker to decode (BENCH.md):
//
//	0x01                       format version
//	{tag byte, value}…         fields in any order, zero values left out
//
// A string is a uvarint length and its bytes; a time is a varint of its
// Unix time in nanoseconds (UTC); a count is a uvarint. Tags:
//
//	1 id  2 state  3 attempts (count)  4 started  5 ended  6 last error
//	7 outputs: count, then key and value strings in key order
//	8 approved by  9 approval comment  10 approved at  11 marked by  12 mark reason
//	13 history: count, then per attempt: flags (1 started, 2 ended, 4 result,
//	   8 error), n (count), then the fields its flags name, in that order
//
// A value that starts with '{' is read as the JSON of a NodeRecord, so that
// a record written by hand with the bbolt tool is still understood.
const nodeFormat = 1

const (
	tagID byte = iota + 1
	tagState
	tagAttempts
	tagStarted
	tagEnded
	tagLastError
	tagOutputs
	tagApprovedBy
	tagApprovalComment
	tagApprovedAt
	tagMarkedBy
	tagMarkReason
	tagHistory
)

const (
	attStarted = 1 << iota
	attEnded
	attResult
	attError
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte { return binary.AppendVarint(b, t.UnixNano()) }

func appendStringField(b []byte, tag byte, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, tag), s)
}

func appendTimeField(b []byte, tag byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return appendTime(append(b, tag), t)
}

// marshalNode encodes n in the binary form above.
func marshalNode(n *NodeRecord) []byte {
	b := make([]byte, 0, 64+len(n.ID)+len(n.LastError)+40*len(n.History))
	b = append(b, nodeFormat)
	b = appendStringField(b, tagID, n.ID)
	b = appendStringField(b, tagState, string(n.State))
	if n.Attempts > 0 {
		b = binary.AppendUvarint(append(b, tagAttempts), uint64(n.Attempts))
	}
	b = appendTimeField(b, tagStarted, n.Started)
	b = appendTimeField(b, tagEnded, n.Ended)
	b = appendStringField(b, tagLastError, n.LastError)
	if len(n.Outputs) > 0 {
		b = binary.AppendUvarint(append(b, tagOutputs), uint64(len(n.Outputs)))
		for _, k := range slices.Sorted(maps.Keys(n.Outputs)) {
			b = appendString(appendString(b, k), n.Outputs[k])
		}
	}
	b = appendStringField(b, tagApprovedBy, n.ApprovedBy)
	b = appendStringField(b, tagApprovalComment, n.ApprovalComment)
	b = appendTimeField(b, tagApprovedAt, n.ApprovedAt)
	b = appendStringField(b, tagMarkedBy, n.MarkedBy)
	b = appendStringField(b, tagMarkReason, n.MarkReason)
	if len(n.History) > 0 {
		b = binary.AppendUvarint(append(b, tagHistory), uint64(len(n.History)))
		for _, a := range n.History {
			var flags byte
			if !a.Started.IsZero() {
				flags |= attStarted
			}
			if !a.Ended.IsZero() {
				flags |= attEnded
			}
			if a.Result != "" {
				flags |= attResult
			}
			if a.Error != "" {
				flags |= attError
			}
			b = binary.AppendUvarint(append(b, flags), uint64(max(a.N, 0)))
			if flags&attStarted != 0 {
				b = appendTime(b, a.Started)
			}
			if flags&attEnded != 0 {
				b = appendTime(b, a.Ended)
			}
			if flags&attResult != 0 {
				b = appendString(b, string(a.Result))
			}
			if flags&attError != 0 {
				b = appendString(b, a.Error)
			}
		}
	}
	return b
}

// errBadRecord is wrapped by every decoding error of a node record.
var errBadRecord = errors.New("bad node record")

// reader decodes the binary form; the first error sticks. Strings are
// cut from one copy of the whole value (str), so that a record costs one
// allocation for all its strings.
type reader struct {
	b   []byte // what is left to read
	str string // the whole value
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at %d bytes from the end", errBadRecord, what, len(r.b))
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad count")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) count() int {
	v := r.uvarint()
	if v > math.MaxInt32 || v > uint64(len(r.b))+1<<20 {
		r.fail("count too large")
		return 0
	}
	return int(v)
}

// span returns the offsets in str of the next string.
func (r *reader) span() (int, int) {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string past the end")
		return 0, 0
	}
	start := len(r.str) - len(r.b)
	r.b = r.b[n:]
	return start, start + int(n)
}

func (r *reader) string() string {
	i, j := r.span()
	return r.str[i:j]
}

func (r *reader) time() time.Time {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad time")
		return time.Time{}
	}
	r.b = r.b[n:]
	return time.Unix(0, v).UTC()
}

// state returns a NodeState, the constant itself for the known ones.
func (r *reader) state() NodeState {
	s := r.string()
	for _, st := range NodeStates {
		if s == string(st) {
			return st
		}
	}
	return NodeState(s)
}

// nodeState returns the state of a stored node record, reading only the
// fields marshalNode writes before it (id, then state) when they are there,
// and decoding the whole record otherwise. What follows the state is not
// read: for a record known to be as the store wrote it (Verify, once its
// digest matches the journal's).
func nodeState(v []byte) (NodeState, error) {
	if len(v) > 2 && v[0] == nodeFormat && v[1] == tagID {
		if l, n := binary.Uvarint(v[2:]); n > 0 && l < uint64(len(v)) {
			rest := v[2+n:]
			if uint64(len(rest)) > l && rest[l] == tagState {
				rest = rest[l+1:]
				if sl, m := binary.Uvarint(rest); m > 0 && sl <= uint64(len(rest)-m) {
					st := rest[m : m+int(sl)]
					for _, known := range NodeStates {
						if string(st) == string(known) {
							return known, nil
						}
					}
				}
			}
		}
	}
	n, err := unmarshalNode(v)
	return n.State, err
}

// unmarshalNode decodes a node record stored by marshalNode (or as JSON).
func unmarshalNode(v []byte) (NodeRecord, error) {
	var n NodeRecord
	if len(v) > 0 && v[0] == '{' {
		err := json.Unmarshal(v, &n)
		return n, err
	}
	r := reader{b: v, str: string(v)}
	if f := r.byte(); f != nodeFormat && r.err == nil {
		return n, fmt.Errorf("%w: format %d, this reprise reads format %d", errBadRecord, f, nodeFormat)
	}
	for len(r.b) > 0 && r.err == nil {
		switch tag := r.byte(); tag {
		case tagID:
			n.ID = r.string()
		case tagState:
			n.State = r.state()
		case tagAttempts:
			n.Attempts = r.count()
		case tagStarted:
			n.Started = r.time()
		case tagEnded:
			n.Ended = r.time()
		case tagLastError:
			n.LastError = r.string()
		case tagOutputs:
			c := r.count()
			n.Outputs = make(map[string]string, min(c, 64))
			for range c {
				k := r.string()
				n.Outputs[k] = r.string()
			}
		case tagApprovedBy:
			n.ApprovedBy = r.string()
		case tagApprovalComment:
			n.ApprovalComment = r.string()
		case tagApprovedAt:
			n.ApprovedAt = r.time()
		case tagMarkedBy:
			n.MarkedBy = r.string()
		case tagMarkReason:
			n.MarkReason = r.string()
		case tagHistory:
			c := r.count()
			n.History = make([]Attempt, 0, min(c, MaxHistory))
			for range c {
				n.History = append(n.History, r.attempt())
				if r.err != nil {
					break
				}
			}
		default:
			r.fail(fmt.Sprintf("unknown field tag %d", tag))
		}
	}
	return n, r.err
}

func (r *reader) attempt() Attempt {
	flags := r.byte()
	a := Attempt{N: r.count()}
	if flags&attStarted != 0 {
		a.Started = r.time()
	}
	if flags&attEnded != 0 {
		a.Ended = r.time()
	}
	if flags&attResult != 0 {
		a.Result = r.state()
	}
	if flags&attError != 0 {
		a.Error = r.string()
	}
	if flags&^(attStarted|attEnded|attResult|attError) != 0 {
		r.fail(fmt.Sprintf("unknown attempt flags %#x", flags))
	}
	return a
}
