// Package hl7 is the small slice of HL7 v2 the hospital example needs:
// messages as segments and fields, ACKs, and MLLP framing
// (0x0b, message, 0x1c 0x0d) over TCP.
package hl7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MLLP framing bytes.
const (
	StartBlock     = 0x0b
	EndBlock       = 0x1c
	CarriageReturn = 0x0d
)

// MaxFrame bounds one framed message (1 MiB is far beyond any test message).
const MaxFrame = 1 << 20

// ErrFrame is returned when bytes on the wire are not a valid MLLP frame.
var ErrFrame = errors.New("bad MLLP frame")

// WriteFrame writes msg wrapped in MLLP framing.
func WriteFrame(w io.Writer, msg []byte) error {
	buf := make([]byte, 0, len(msg)+3)
	buf = append(buf, StartBlock)
	buf = append(buf, msg...)
	buf = append(buf, EndBlock, CarriageReturn)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one MLLP frame and returns the message inside it.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if b != StartBlock {
		return nil, fmt.Errorf("%w: first byte 0x%02x, want 0x0b", ErrFrame, b)
	}
	var msg bytes.Buffer
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFrame, err)
		}
		if b == EndBlock {
			cr, err := r.ReadByte()
			if err != nil || cr != CarriageReturn {
				return nil, fmt.Errorf("%w: 0x1c not followed by 0x0d", ErrFrame)
			}
			return msg.Bytes(), nil
		}
		if msg.Len() >= MaxFrame {
			return nil, fmt.Errorf("%w: over %d bytes", ErrFrame, MaxFrame)
		}
		msg.WriteByte(b)
	}
}

// Send opens an MLLP connection to addr, sends msg and returns the parsed
// reply (normally an ACK). The exchange is bounded by ctx and timeout.
func Send(ctx context.Context, addr string, msg *Message, timeout time.Duration) (*Message, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mllp dial %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	if err := WriteFrame(conn, msg.Bytes()); err != nil {
		return nil, fmt.Errorf("mllp send to %s: %w", addr, err)
	}
	raw, err := ReadFrame(bufio.NewReader(conn))
	if err != nil {
		return nil, fmt.Errorf("mllp reply from %s: %w", addr, err)
	}
	reply, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("mllp reply from %s: %w", addr, err)
	}
	return reply, nil
}

// Handler answers one received message with a reply (an ACK).
type Handler func(ctx context.Context, msg *Message) *Message

// Serve accepts MLLP connections on ln until ctx ends, answering every frame
// with handler's reply. Unparseable messages get an AR ACK when possible and
// the connection is closed.
func Serve(ctx context.Context, ln net.Listener, handler Handler) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go serveConn(ctx, conn, handler)
	}
}

func serveConn(ctx context.Context, conn net.Conn, handler Handler) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		raw, err := ReadFrame(r)
		if err != nil {
			return
		}
		msg, err := Parse(raw)
		var reply *Message
		if err != nil {
			reply = Reject(err.Error())
		} else {
			reply = handler(ctx, msg)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := WriteFrame(conn, reply.Bytes()); err != nil || msg == nil {
			return
		}
	}
}
