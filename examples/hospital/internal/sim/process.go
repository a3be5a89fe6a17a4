package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrPortHeld is returned (wrapped) by Probe when an application's port is
// held by something else: another service, or the same application of
// another hospital (another work folder).
var ErrPortHeld = errors.New("port held by another service")

// Probe asks app's /health; nil when it answers 200 for that app.
func Probe(ctx context.Context, env Env, app App) (Health, error) {
	var h Health
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL(app)+"/health", nil)
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return Health{}, fmt.Errorf("%w: %s: /health is not a hospital service's: %v", ErrPortHeld, env.HTTPAddr(app), err)
	}
	if h.App != app.ID {
		return Health{}, fmt.Errorf("%w: %s answers as %q, not %q", ErrPortHeld, env.HTTPAddr(app), h.App, app.ID)
	}
	if h.Work != absPath(env.Work) {
		return Health{}, fmt.Errorf("%w: %s is the %s of another hospital (work folder %s, pid %d): stop it or set HOSPITAL_PORT_BASE", ErrPortHeld, env.HTTPAddr(app), app.ID, h.Work, h.Pid)
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("%s unhealthy (%s): %s", app.ID, resp.Status, h.Error)
	}
	return h, nil
}

// ProbeCurrent is Probe, and checks that the service runs on the data as
// restored now (not on an earlier copy).
func ProbeCurrent(ctx context.Context, env Env, app App) (Health, error) {
	h, err := Probe(ctx, env, app)
	if err != nil {
		return h, err
	}
	if h.Data != dataFingerprint(env, app) {
		return h, fmt.Errorf("%s (pid %d) runs on data restored before the current copy", app.ID, h.Pid)
	}
	return h, nil
}

// appOutputs are what a started service hands to the nodes after it.
func appOutputs(env Env, app App, pid int) Outputs {
	return Outputs{"url": env.URL(app), "mllp": env.MLLPAddr(app), "pid": strconv.Itoa(pid)}
}

// Start starts app's service detached from the step (its own session, so
// that reprise ending the step's process group leaves it running), records
// its pid in work/pids and waits until /health answers 200. An app already
// running and healthy is left as it is.
func Start(ctx context.Context, w io.Writer, env Env, self string, app App) (Outputs, error) {
	h, probeErr := Probe(ctx, env, app)
	switch {
	case probeErr == nil && h.Data == dataFingerprint(env, app):
		fmt.Fprintf(w, "%s: already running and healthy (pid %d)\n", app.ID, h.Pid)
		return appOutputs(env, app, h.Pid), nil
	case probeErr == nil:
		fmt.Fprintf(w, "%s: running (pid %d) on data restored before the current copy: restarting it\n", app.ID, h.Pid)
		stopPid(h.Pid)
	case h.App == app.ID && h.Pid > 0:
		fmt.Fprintf(w, "%s: running but unhealthy (%v): restarting it\n", app.ID, probeErr)
		stopPid(h.Pid)
	case h.App != "":
		return nil, probeErr
	}
	for _, addr := range []string{env.HTTPAddr(app), env.MLLPAddr(app)} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if errors.Is(probeErr, ErrPortHeld) {
				return nil, fmt.Errorf("start %s: %w", app.ID, probeErr) // it says who holds the port
			}
			return nil, portError(env, app, addr, "", err)
		}
		ln.Close()
	}
	for _, d := range []string{filepath.Dir(env.PidFile(app.ID)), filepath.Dir(env.LogFile(app.ID))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	logf, err := os.OpenFile(env.LogFile(app.ID), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "serve", app.ID)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", app.ID, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(env.PidFile(app.ID), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		stopPid(pid)
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h, err := Probe(ctx, env, app)
		if err == nil {
			fmt.Fprintf(w, "%s: started (pid %d), healthy on %s, %d files verified\n", app.ID, pid, env.URL(app), h.Files)
			return appOutputs(env, app, pid), nil
		}
		if h.App == app.ID && h.Error != "" { // up but its data failed verification
			stopPid(pid)
			os.Remove(env.PidFile(app.ID))
			return nil, fmt.Errorf("start %s: %s", app.ID, h.Error)
		}
		select {
		case werr := <-exited:
			os.Remove(env.PidFile(app.ID))
			return nil, fmt.Errorf("start %s: exited (%v): %s", app.ID, werr, tail(env.LogFile(app.ID)))
		case <-ctx.Done():
			stopPid(pid)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stopPid(pid)
			return nil, fmt.Errorf("start %s: not healthy after 15s: %v", app.ID, err)
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// stopPid ends a service's process group: SIGTERM, then SIGKILL after 3s.
func stopPid(pid int) {
	if pid <= 1 {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 60; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// StopAll stops every service recorded in work/pids (only processes that
// are this simulator's `serve`, so that a recycled pid is left alone).
func StopAll(w io.Writer, env Env) error {
	files, _ := filepath.Glob(filepath.Join(env.Work, "pids", "*.pid"))
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), "serve") {
			stopPid(pid)
			fmt.Fprintf(w, "stopped %s (pid %d)\n", strings.TrimSuffix(filepath.Base(f), ".pid"), pid)
		}
		os.Remove(f)
	}
	return errors.Join(errs...)
}
