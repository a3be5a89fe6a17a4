// Package wire is the go-plugin glue shared by the plugin host
// (engine/host) and the plugin SDK (plugins/sdk): the handshake, the plugin
// set and the gRPC plumbing of the reprise.plugin.v1 contract. Vendor plugins
// never import it; they use plugins/sdk.
package wire

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// The handshake values a plugin process must see in its environment (the
// host sets them) and the protocol version it announces on stdout.
const (
	MagicCookieKey   = "REPRISE_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "7c1f3e0b-reprise-plugin"
	ProtocolVersion  = 1
	// PluginName is the name of the one plugin in the go-plugin plugin set.
	PluginName = "step"
)

// Handshake is the go-plugin handshake of reprise plugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// GRPCPlugin adapts a pluginv1.PluginServer (plugin side) or hands out a
// pluginv1.PluginClient (host side) to go-plugin. It supports gRPC only.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the implementation served; nil on the host side.
	Impl pluginv1.PluginServer
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the plugin service on s.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServer(s, p.Impl)
	return nil
}

// GRPCClient returns a pluginv1.PluginClient over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return pluginv1.NewPluginClient(conn), nil
}

// PluginSet returns the go-plugin plugin set for server (nil on the host side).
func PluginSet(server pluginv1.PluginServer) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: server}}
}

// MaxBatchBytes bounds one message of a Session, host's side or plugin's
// side (gRPC servers refuse messages over 4 MiB by default).
const MaxBatchBytes = 1 << 20

// SplitBatch returns how many leading frames of batch fit in one Session
// message: at least one, at most MaxBatchBytes in all.
func SplitBatch[F proto.Message](batch []F) int {
	size := 0
	for i, f := range batch {
		size += proto.Size(f)
		if i > 0 && size > MaxBatchBytes {
			return i
		}
	}
	return len(batch)
}

// MaxMessage is the largest gRPC message the host and the SDK's plugins
// accept (gRPC's default is 4 MiB): room for a node's outputs at the
// largest limits a graph may set. MaxOutputBytes is what the SDK lets one
// call send as outputs in all; more fails the step, never the session.
const (
	MaxMessage     = 64 << 20
	MaxOutputBytes = 32 << 20
)
