package graphs

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits bound what a node's step may store as outputs. A step past them
// fails with an error naming the node, the key and the size, and nothing of
// its outputs is stored. The zero value of a field means its default.
type Limits struct {
	// OutputValue is the largest value of one output, in bytes (default 64 KiB).
	OutputValue int64
	// NodeOutputs is the largest total of one node's output keys and values,
	// in bytes (default 1 MiB).
	NodeOutputs int64
	// OutputKeys is the most outputs one node may set (default 1,000).
	OutputKeys int
}

// Default and largest output limits. The largest keep a node's outputs,
// and a dependent's inputs, within what the plugin wire carries.
const (
	DefaultOutputValue = 64 << 10
	DefaultNodeOutputs = 1 << 20
	DefaultOutputKeys  = 1000
	MaxOutputValue     = 16 << 20
	MaxNodeOutputs     = 16 << 20
	MaxOutputKeys      = 100000
)

// Effective returns l with defaults in place of zero fields.
func (l Limits) Effective() Limits {
	if l.OutputValue <= 0 {
		l.OutputValue = DefaultOutputValue
	}
	if l.NodeOutputs <= 0 {
		l.NodeOutputs = DefaultNodeOutputs
	}
	if l.OutputKeys <= 0 {
		l.OutputKeys = DefaultOutputKeys
	}
	return l
}

var limitsFields = []string{"output_value", "node_outputs", "output_keys"}

func (d *decoder) decodeLimits(v *value) {
	d.fields(v, "", "limits", limitsFields, func(key string, fv *value) {
		field := "limits." + key
		switch key {
		case "output_value":
			d.g.Limits.OutputValue, _ = d.size(fv, field, MaxOutputValue)
		case "node_outputs":
			d.g.Limits.NodeOutputs, _ = d.size(fv, field, MaxNodeOutputs)
		case "output_keys":
			if n, ok := d.nonNegInt(fv, "", field); ok {
				if n < 1 || n > MaxOutputKeys {
					d.add(fv.pos, "", field, fv.s, ErrBadValue, "%s: %d is out of range (want 1 to %d)", field, n, MaxOutputKeys)
					return
				}
				d.g.Limits.OutputKeys = n
			}
		}
	})
}

const sizeHelp = "want a number of bytes or a size such as 64KiB, 1MiB"

// size decodes a byte count: a whole number, or a number with a unit
// (B, KiB, MiB; KB and MB are read as KiB and MiB), from 1 to max.
func (d *decoder) size(v *value, field string, max int64) (int64, bool) {
	var n int64
	switch v.kind {
	case vInt:
		var err error
		if n, err = strconv.ParseInt(v.s, 10, 64); err != nil {
			n = -1
		}
	case vStr:
		var ok bool
		if n, ok = ParseSize(v.s); !ok {
			d.add(v.pos, "", field, v.s, ErrBadValue, "%s: bad size %s (%s)", field, quoteShort(v.s), sizeHelp)
			return 0, false
		}
	default:
		d.typeErr(v, "", field, "a size ("+sizeHelp+")")
		return 0, false
	}
	if n < 1 || n > max {
		d.add(v.pos, "", field, v.s, ErrBadValue, "%s: %s is out of range (want 1 byte to %s)", field, v.s, FormatSize(max))
		return 0, false
	}
	return n, true
}

// ParseSize reads "65536", "64KiB", "64 KB", "1MiB", "512B".
func ParseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
		return n, true
	case "k", "kb", "kib":
		return n << 10, true
	case "m", "mb", "mib":
		return n << 20, true
	}
	return 0, false
}

// FormatSize writes a byte count the way ParseSize reads it: 64KiB, 1MiB,
// or bytes.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
