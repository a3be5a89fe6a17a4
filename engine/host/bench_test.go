package host_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// BenchmarkRestoreNoop measures full Restore round trips to a running noop
// plugin process at concurrency 1 and 8, through the plugin's Session
// stream (the default) and with one RPC per call, and reports the median
// and 99th percentile latency of one call (ns/op is the throughput: wall
// time over calls).
func BenchmarkRestoreNoop(b *testing.B) {
	for _, workers := range []int{1, 8} {
		for _, mode := range []string{"session", "rpc"} {
			b.Run("concurrency="+strconv.Itoa(workers)+"/"+mode, func(b *testing.B) { benchRestore(b, workers, mode == "rpc") })
		}
	}
}

func benchRestore(b *testing.B, workers int, perCall bool) {
	h := host.New(host.Options{BuiltinCommand: hosttest.BuiltinCommand, NoSessions: perCall})
	defer h.Close()
	ctx := context.Background()
	r := req("noop", "milestone", map[string]any{"outputs": map[string]any{"phase": "2"}})
	if _, err := h.Restore(ctx, r, nil); err != nil { // start the process outside the timing
		b.Fatal(err)
	}
	lat := make([][]time.Duration, workers)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += workers {
				start := time.Now()
				res, err := h.Restore(ctx, r, nil)
				lat[w] = append(lat[w], time.Since(start))
				if err != nil || res.Outputs["phase"] != "2" {
					b.Errorf("Restore = %+v, %v", res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkPluginStart measures a plugin's start: process, handshake,
// AutoMTLS, and the first answer (Describe).
func BenchmarkPluginStart(b *testing.B) {
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		h := host.New(host.Options{BuiltinCommand: hosttest.BuiltinCommand})
		start := time.Now()
		if _, err := h.Describe(ctx, "noop"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		h.Close()
		b.StartTimer()
	}
	reportLatency(b, [][]time.Duration{lat})
}

func reportLatency(b *testing.B, parts [][]time.Duration) {
	var all []time.Duration
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "µs-median")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "µs-p99")
}

// BenchmarkDescribeRoundTrip measures the cheapest call there is, a unary
// Describe, one at a time: the floor of any call through go-plugin's gRPC
// connection (AutoMTLS over a Unix socket) on this machine.
func BenchmarkDescribeRoundTrip(b *testing.B) {
	h := host.New(host.Options{BuiltinCommand: hosttest.BuiltinCommand})
	defer h.Close()
	ctx := context.Background()
	if _, err := h.Describe(ctx, "noop"); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if _, err := h.Describe(ctx, "noop"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, [][]time.Duration{lat})
}

// envEcho makes the test binary an echo peer on the Unix socket it names.
const envEcho = "REPRISE_TEST_ECHO"

// serveEcho echoes every byte read on the Unix socket at path until EOF.
func serveEcho(path string) {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buf := make([]byte, 1)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// BenchmarkSocketPingPong measures one byte there and back between this
// process and another Go process over a Unix socket, without gRPC or TLS:
// what a trip costs on this machine before any protocol.
func BenchmarkSocketPingPong(b *testing.B) {
	path := filepath.Join(b.TempDir(), "echo.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envEcho+"="+path)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	c, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, [][]time.Duration{lat})
}
