package builtin

import (
	"context"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// Manual is a gate: Restore answers "waiting for approval" until an
// operator approves the node (`reprise approve RUN NODE`).
// `with: {message: "…"}` says what the operator must confirm.
type Manual struct{ sdk.Unsupported }

var _ sdk.Plugin = (*Manual)(nil)

type manualConfig struct {
	Message string `json:"message" desc:"what the operator must confirm before approving"`
}

// Describe says what manual is.
func (*Manual) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "manual", Version: Version, Description: "a gate waiting for an operator's approval",
		Fields: sdk.FieldsOf(manualConfig{})}, nil
}

// Restore parks the node for approval.
func (*Manual) Restore(_ context.Context, req *sdk.Request, _ *sdk.Stream) error {
	var cfg manualConfig
	if err := req.Decode(&cfg); err != nil {
		return err
	}
	msg := cfg.Message
	if msg == "" {
		msg = "node " + req.NodeID
	}
	return sdk.Waiting("waiting for approval: " + msg)
}
