package sdk

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/reprise-si/reprise/internal/proctree"
	"github.com/reprise-si/reprise/internal/wire"
)

// hostCheckInterval is how often a plugin checks that the reprise process
// that started it is still alive.
const hostCheckInterval = 500 * time.Millisecond

// hostGoneGrace bounds how long calls in flight get to stop once the host
// has died, before the plugin exits anyway.
const hostGoneGrace = 10 * time.Second

// Serve serves impl to the reprise process that started this one, and
// returns when reprise ends the plugin. It must be called from main.
// Started by hand (without reprise's handshake in the environment) it prints
// a short explanation to stderr and exits with status 1.
//
// If the reprise process dies without ending the plugin (killed, power
// cut), the plugin notices within a second: every call's context is
// cancelled, and the process exits once they have returned (at most 10s).
//
// The plugin's os.Stdout and os.Stderr are forwarded to reprise's log;
// write diagnostics with the log package, which writes to the process's
// real stderr and so survives a crash (reprise quotes its last lines).
func Serve(impl Plugin) {
	srv := newServer(impl)
	go watchHost(srv, os.Getppid())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         wire.PluginSet(srv),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20),
				grpc.MaxRecvMsgSize(wire.MaxMessage), grpc.MaxSendMsgSize(wire.MaxMessage))...)
		},
	})
}

// watchHost ends the plugin when its parent, the reprise host, has gone
// (the process is re-parented, so its parent pid changes). On Linux the
// plugin's start-up cleared the parent-death SIGKILL reprise gives every
// plugin, which would cut this short (pdeath_linux.go).
func watchHost(srv *server, ppid int) {
	if ppid <= 1 {
		return // started by init: nothing to watch
	}
	t := time.NewTicker(hostCheckInterval)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != ppid {
			break
		}
	}
	fmt.Fprintf(os.Stderr, "reprise host (pid %d) is gone: stopping\n", ppid)
	srv.hostDied()
	done := make(chan struct{})
	go func() {
		srv.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hostGoneGrace):
	}
	// What the steps left behind (a command's background child) must not
	// outlive reprise either: end the plugin's session but the plugin.
	if proctree.SessionLeader() {
		proctree.KillSession(os.Getpid())
	}
	os.Exit(1)
}
