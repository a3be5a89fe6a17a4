package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/hosttest"
)

const fakeServerEnv = "REPRISE_CONTROL_FAKE_SERVER"

// TestMain lets the test binary be a fake control server (another user's
// process that took the socket's place): it says yes to everything.
func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	if path := os.Getenv(fakeServerEnv); path != "" {
		fakeServer(path)
		return
	}
	os.Exit(m.Run())
}

func fakeServer(path string) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for {
		conn, err := ln.Accept()
		if err != nil {
			os.Exit(0)
		}
		var req control.Request
		_ = json.NewDecoder(bufio.NewReader(conn)).Decode(&req)
		res, _ := json.Marshal("pong")
		b, _ := json.Marshal(control.Frame{Result: res, End: true})
		_, _ = conn.Write(append(b, '\n'))
		conn.Close()
	}
}

// TestFakeServerOfAnotherUser: a process of another user (uid 65534)
// serves the socket of a state file owned by us; the client must refuse
// its answers, so that approve cannot print success for an approval the
// run never got. Needs root (to start the fake server as another user).
func TestFakeServerOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the fake server as another user; TestPeerCredentialsChecked covers the check")
	}
	dir, err := os.MkdirTemp("", "reprise-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil { // a shared folder, sticky
		t.Fatal(err)
	}
	statePath := filepath.Join(dir, "reprise.db")
	if err := os.WriteFile(statePath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := control.SocketPath(statePath)
	// The test binary's own folder is closed to the other user: run a copy.
	bin := filepath.Join(dir, "fake-server")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), fakeServerEnv+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("fake server: %q", sc.Text())
	}
	c, err := control.Dial(sock)
	if err == nil {
		err = c.Approve(context.Background(), "r1", "gate", "bob", "")
		t.Fatalf("Dial and Approve through another user's server: %v; want ErrUntrustedServer", err)
	}
	if !errors.Is(err, control.ErrUntrustedServer) {
		t.Fatalf("Dial = %v, want ErrUntrustedServer", err)
	}
	t.Log(err)
}

// TestPeerCredentialsChecked: a real server of this process, and a client
// that expects the state file's owner to be someone else, refuses it.
func TestPeerCredentialsChecked(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), "reprise.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := control.Listen(control.SocketPath(st.Path()), control.Backend{Store: st, Live: func() string { return "r" }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := control.Dial(control.SocketPath(st.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if live, err := c.Live(); err != nil || live != "r" {
		t.Fatalf("Live through our own server: %q, %v", live, err)
	}
	control.SetWantUID(c, os.Geteuid()+1)
	if err := c.Approve(context.Background(), "r", "n", "bob", ""); !errors.Is(err, control.ErrUntrustedServer) {
		t.Fatalf("Approve through a server of another uid = %v, want ErrUntrustedServer", err)
	}
}
