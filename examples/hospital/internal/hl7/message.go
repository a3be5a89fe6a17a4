package hl7

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message is an HL7 v2 message: segments of fields, separated by `|`, with
// the default encoding characters `^~\&`. Field numbering follows HL7: for
// MSH, field 1 is the separator itself, so MSH-9 is the message type.
type Message struct {
	Segments [][]string
}

// ErrParse is returned for input that is not an HL7 v2 message.
var ErrParse = errors.New("not an HL7 v2 message")

// Parse splits raw (segments separated by CR, LF or CRLF) into a Message. The
// first segment must be an MSH with the standard separators.
func Parse(raw []byte) (*Message, error) {
	text := strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\r"), "\n", "\r")
	var m Message
	for _, line := range strings.Split(text, "\r") {
		if line == "" {
			continue
		}
		m.Segments = append(m.Segments, strings.Split(line, "|"))
	}
	if len(m.Segments) == 0 || m.Segments[0][0] != "MSH" || len(m.Segments[0]) < 12 {
		return nil, fmt.Errorf("%w: first segment must be MSH with at least 12 fields", ErrParse)
	}
	if m.Segments[0][1] != `^~\&` {
		return nil, fmt.Errorf("%w: MSH-2 encoding characters %q, want ^~\\&", ErrParse, m.Segments[0][1])
	}
	return &m, nil
}

// Bytes renders the message with CR segment separators.
func (m *Message) Bytes() []byte {
	lines := make([]string, len(m.Segments))
	for i, s := range m.Segments {
		lines[i] = strings.Join(s, "|")
	}
	return []byte(strings.Join(lines, "\r") + "\r")
}

// Segment returns the first segment named name, or nil.
func (m *Message) Segment(name string) []string {
	for _, s := range m.Segments {
		if s[0] == name {
			return s
		}
	}
	return nil
}

// Field returns field n of the first segment named seg ("" when absent),
// numbered as in HL7 (MSH-9 is the message type).
func (m *Message) Field(seg string, n int) string {
	s := m.Segment(seg)
	if s == nil {
		return ""
	}
	idx := n
	if seg == "MSH" {
		idx = n - 1 // MSH-1 is the field separator itself
	}
	if idx < 0 || idx >= len(s) {
		return ""
	}
	return s[idx]
}

// Component returns component c (1-based) of field value v.
func Component(v string, c int) string {
	parts := strings.Split(v, "^")
	if c < 1 || c > len(parts) {
		return ""
	}
	return parts[c-1]
}

// Type returns the message type and trigger, as "ADT^A01".
func (m *Message) Type() string {
	t := m.Field("MSH", 9)
	return Component(t, 1) + "^" + Component(t, 2)
}

// ControlID returns MSH-10.
func (m *Message) ControlID() string { return m.Field("MSH", 10) }

// NewMessage starts a message with an MSH segment.
func NewMessage(sendingApp, receivingApp, msgType, controlID string, at time.Time) *Message {
	ts := at.UTC().Format("20060102150405")
	structure := strings.ReplaceAll(msgType, "^", "_")
	return &Message{Segments: [][]string{{
		"MSH", `^~\&`, sendingApp, "CHSF", receivingApp, "CHSF", ts, "",
		msgType + "^" + structure, controlID, "P", "2.5",
	}}}
}

// Add appends a segment.
func (m *Message) Add(fields ...string) *Message {
	m.Segments = append(m.Segments, fields)
	return m
}

// Ack codes (MSA-1).
const (
	AckAccept = "AA" // accepted
	AckError  = "AE" // application error
	AckReject = "AR" // rejected
)

// Ack builds the acknowledgement of m with code and text, from the
// receiving application back to the sender.
func Ack(m *Message, from, code, text string) *Message {
	ack := NewMessage(from, m.Field("MSH", 3), "ACK^"+Component(m.Field("MSH", 9), 2), "ACK"+m.ControlID(), time.Now())
	return ack.Add("MSA", code, m.ControlID(), text)
}

// Reject builds an AR acknowledgement for input that could not be parsed.
func Reject(text string) *Message {
	ack := NewMessage("CHSF", "", "ACK", "ACK", time.Now())
	return ack.Add("MSA", AckReject, "", text)
}

// AckCode returns MSA-1 of an acknowledgement ("" when it has no MSA).
func (m *Message) AckCode() string { return m.Field("MSA", 1) }

// AckText returns MSA-3.
func (m *Message) AckText() string { return m.Field("MSA", 3) }
