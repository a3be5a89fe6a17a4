package sdk

import (
	"github.com/hashicorp/go-plugin"

	"github.com/reprise-si/reprise/plugins/wire"
)

// Serve serves impl to the reprise process that started this one, and
// returns when reprise ends the plugin. It must be called from main.
// Started by hand (without reprise's handshake in the environment) it prints
// a short explanation to stderr and exits with status 1.
func Serve(impl Plugin) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         wire.PluginSet(newServer(impl)),
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
