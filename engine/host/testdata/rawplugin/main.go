// Command rawplugin is a plugin written on go-plugin alone, the way a
// vendor may write one without plugins/sdk: it does not watch its parent,
// and it ignores SIGTERM. Its Restore runs until its call is cancelled.
// At start it writes its pid to $REPRISE_TEST_RAW_PIDFILE. The tests of
// engine/host build it (it must not link plugins/sdk, whose start-up
// changes the process's parent-death signal).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-plugin"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

type raw struct {
	pluginv1.UnimplementedPluginServer
}

func (raw) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return &pluginv1.DescribeResponse{Name: "raw", Version: "0.1.0"}, nil
}

func (raw) Restore(_ *pluginv1.StepRequest, s pluginv1.Plugin_RestoreServer) error {
	if err := s.Send(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Log{Log: &pluginv1.Log{Message: "holding the hypervisor"}}}); err != nil {
		return err
	}
	<-s.Context().Done()
	return s.Context().Err()
}

func main() {
	signal.Ignore(syscall.SIGTERM)
	if path := os.Getenv("REPRISE_TEST_RAW_PIDFILE"); path != "" {
		if err := os.WriteFile(path+".tmp", []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         wire.PluginSet(raw{}),
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
