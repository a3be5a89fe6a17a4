package host_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// crashPlugin misbehaves on demand, by the node's `with.do`:
// "panic" (in a goroutine: a real crash), "exit" (os.Exit(3)), "sigkill"
// (kills itself), "hang" (waits for cancellation), "spawn" (starts a
// long-lived child and writes its pid to with.pidfile), "ok".
type crashPlugin struct{}

func (crashPlugin) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "crashy", Version: "0.0.1", Kinds: []string{"application"}}, nil
}

func (crashPlugin) Restore(ctx context.Context, req *sdk.Request, s *sdk.Stream) error {
	do, _ := req.Config["do"].(string)
	s.Logf("doing %s", do)
	switch do {
	case "panic":
		fmt.Fprintln(os.Stderr, "about to panic")
		done := make(chan struct{})
		go func() { panic("database index corrupted") }()
		<-done
	case "exit":
		log.Print("fatal: licence server unreachable") // log writes to the real stderr
		os.Exit(3)
	case "sigkill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		<-ctx.Done()
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	case "spawn":
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			return err
		}
		pidfile, _ := req.Config["pidfile"].(string)
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
			return err
		}
		s.Output("child", strconv.Itoa(cmd.Process.Pid))
	case "stderr":
		log.Print("real stderr line")
		fmt.Fprintln(os.Stderr, "forwarded stderr line")
		time.Sleep(time.Second) // let go-plugin forward it while the call is in flight
	}
	s.Output("pid", strconv.Itoa(os.Getpid()))
	if v, ok := req.Inputs["storage"]["mount"]; ok {
		s.Output("input", v)
	}
	s.Output("mode", fmt.Sprintf("dry=%v attempt=%d kind=%s run=%s workdir=%s drill=%v", req.DryRun, req.Attempt, req.Kind, req.RunID, req.WorkDir, req.Drill))
	return nil
}

// serveTestPlugin serves test plugin name: "crashy", "slowstart" (sleeps
// before serving), "badcookie" (serves after breaking its handshake env),
// "silent" (exits at once), "legacy" (no Session), "brokensession" (ends
// its Session): see legacy_test.go, and "lab": see verifyplugin_test.go.
func serveTestPlugin(name string) {
	switch name {
	case "crashy":
		sdk.Serve(crashPlugin{})
	case "slowstart":
		time.Sleep(30 * time.Second)
		sdk.Serve(crashPlugin{})
	case "badcookie":
		os.Setenv("REPRISE_PLUGIN_MAGIC_COOKIE", "wrong")
		sdk.Serve(crashPlugin{})
	case "silent":
		fmt.Println("hello, I am not a plugin")
	case "legacy":
		serveLegacy(false)
	case "brokensession":
		serveLegacy(true)
	case "lab":
		sdk.Serve(labPlugin{})
	case "hostile":
		sdk.Serve(hostilePlugin{})
	case "rawpoints":
		serveRawPoints()
	}
}
