package state

import (
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEntryJSON appends the JSON of e exactly as encoding/json's Marshal
// writes it (same fields, order, omissions and escaping; a test holds them
// equal), without reflection: the writer goroutine encodes every entry.
func appendEntryJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if !e.Time.IsZero() {
		b = append(b, `,"time":"`...)
		b = e.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, string(e.Type))
	if e.NodeID != "" {
		b = appendJSONString(append(b, `,"node":`...), e.NodeID)
	}
	if e.State != "" {
		b = appendJSONString(append(b, `,"state":`...), string(e.State))
	}
	if e.Attempt != 0 {
		b = strconv.AppendInt(append(b, `,"attempt":`...), int64(e.Attempt), 10)
	}
	if e.Message != "" {
		b = appendJSONString(append(b, `,"msg":`...), e.Message)
	}
	if e.By != "" {
		b = appendJSONString(append(b, `,"by":`...), e.By)
	}
	if len(e.Data) > 0 {
		b = append(b, `,"data":{`...)
		for i, k := range slices.Sorted(maps.Keys(e.Data)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendJSONString(b, k), ':')
			b = appendJSONString(b, e.Data[k])
		}
		b = append(b, '}')
	}
	if e.Record != "" {
		b = appendJSONString(append(b, `,"record":`...), e.Record)
	}
	b = appendJSONString(append(b, `,"prev":`...), e.Prev)
	b = appendJSONString(append(b, `,"hash":`...), e.Hash)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping on: <, >, & and U+2028, U+2029 as \u escapes, control
// characters as \n, \r, \t, \b, \f or \u00XX, invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
