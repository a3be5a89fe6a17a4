package hl7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	msg := []byte("MSH|^~\\&|A\rPID|1\r")
	if err := WriteFrame(&buf, msg); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if raw[0] != 0x0b || !bytes.HasSuffix(raw, []byte{0x1c, 0x0d}) {
		t.Fatalf("framing: % x", raw)
	}
	got, err := ReadFrame(bufio.NewReader(&buf))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"no start block", []byte("MSH|\x1c\x0d")},
		{"no end", []byte("\x0bMSH|")},
		{"end without CR", []byte("\x0bMSH|\x1cX")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tt.in)))
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("got %v, want ErrFrame", err)
			}
		})
	}
}

func TestParseAndFields(t *testing.T) {
	m := NewMessage("GAM", "LIS", "ADT^A01", "C1", time.Date(2022, 10, 10, 12, 0, 0, 0, time.UTC))
	m.Add("PID", "1", "", "123^^^INS", "", "MARTIN^LEA")
	back, err := Parse(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ got, want string }{
		{back.Type(), "ADT^A01"},
		{back.ControlID(), "C1"},
		{back.Field("MSH", 3), "GAM"},
		{back.Field("MSH", 5), "LIS"},
		{back.Field("MSH", 7), "20221010120000"},
		{Component(back.Field("PID", 3), 1), "123"},
		{Component(back.Field("PID", 5), 2), "LEA"},
		{back.Field("PV1", 1), ""},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %q, want %q", i, c.got, c.want)
		}
	}
	for _, bad := range []string{"", "PID|1", "MSH|^~\\&|short", "MSH|abcd|A|B|C|D|E|F|G|H|I|J"} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("Parse(%q): got %v, want ErrParse", bad, err)
		}
	}
}

func TestServeAndSendOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, ln, func(_ context.Context, m *Message) *Message {
		if m.Segment("PID") == nil {
			return Ack(m, "LIS", AckError, "no PID")
		}
		return Ack(m, "LIS", AckAccept, "ok")
	})
	tests := []struct {
		name     string
		withPID  bool
		wantCode string
	}{
		{"accepted", true, AckAccept},
		{"application error", false, AckError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMessage("GAM", "LIS", "ADT^A01", "CTRL-"+tt.name[:3], time.Now())
			if tt.withPID {
				m.Add("PID", "1")
			}
			ack, err := Send(ctx, ln.Addr().String(), m, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if ack.AckCode() != tt.wantCode || ack.Field("MSA", 2) != m.ControlID() {
				t.Fatalf("ack %q", strings.ReplaceAll(string(ack.Bytes()), "\r", "\n"))
			}
			if ack.Type() != "ACK^A01" {
				t.Errorf("ack type %q, want ACK^A01", ack.Type())
			}
		})
	}
	// Garbage inside a frame is answered with AR.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	WriteFrame(conn, []byte("not hl7"))
	raw, err := ReadFrame(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	reply, err := Parse(raw)
	if err != nil || reply.AckCode() != AckReject {
		t.Fatalf("reply %q, %v; want AR", raw, err)
	}
}
