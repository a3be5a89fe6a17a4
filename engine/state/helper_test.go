package state

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The tests re-run their own binary as a second process (helperEnv says
// what to do, helperPath on which file): the lock and crash tests need a
// real other process.
const (
	helperEnv  = "REPRISE_STATE_TEST_HELPER"
	helperPath = "REPRISE_STATE_TEST_PATH"
)

// TestHelperProcess is not a test: it is the body of the helper process.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	path := os.Getenv(helperPath)
	switch mode {
	case "hold":
		// Hold the file until stdin is closed.
		s, err := Open(path, Options{Holder: "state test helper"})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = s.Close()
		os.Exit(0)
	case "open":
		// Try to open the file once and print the error.
		s, err := Open(path, Options{Holder: "second"})
		if err != nil {
			fmt.Printf("error %T %v\n", err, err)
			os.Exit(0)
		}
		_ = s.Close()
		fmt.Println("opened")
		os.Exit(0)
	case "apply":
		helperApply(path)
	case "create-limited":
		// Create the file with a file size limit that cuts bbolt's first
		// write short, as a full disk would.
		signal.Ignore(syscall.SIGXFSZ)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 6000, Max: 6000}); err != nil {
			fmt.Println("setrlimit", err)
			os.Exit(1)
		}
		s, err := Open(path, Options{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(0)
		}
		_ = s.Close()
		fmt.Println("opened")
		os.Exit(0)
	}
	os.Exit(2)
}

// helperApply opens path (holding run "r1") and applies, from 4 goroutines,
// node records PID-1, PID-2, … each with its journal entry, printing "ok ID"
// after each Apply has returned, until it is killed.
func helperApply(path string) {
	s, err := Open(path, Options{Holder: "apply helper"})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var (
		mu  sync.Mutex
		out = bufio.NewWriter(os.Stdout)
		seq int
	)
	next := func() int { mu.Lock(); defer mu.Unlock(); seq++; return seq }
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				n := next()
				id := strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(n)
				err := s.Apply(context.Background(), Change{RunID: "r1",
					Node:  &NodeRecord{ID: id, State: NodeSucceeded, Attempts: 1, Ended: time.Now()},
					Entry: &Entry{Type: "node-succeeded", NodeID: id, State: NodeSucceeded}})
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error", err)
				} else {
					fmt.Fprintln(out, "ok", id)
				}
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// helper starts the test binary as a helper process in mode on path.
func helper(t *testing.T, mode, path string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPath+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, stdin, bufio.NewScanner(stdout)
}

// boltOpenPlain creates a bbolt file as bbolt does, with nothing committed.
func boltOpenPlain(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, nil)
}
