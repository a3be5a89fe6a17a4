package builtin

import (
	"context"
	"fmt"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// Noop does nothing and succeeds: for milestones ("medico-technical
// platform back"), drills and benchmarks. `with: {outputs: {k: v}}` sets
// outputs; `delay: 2s` waits before succeeding (drills).
type Noop struct{}

var (
	_ sdk.Plugin  = (*Noop)(nil)
	_ sdk.Checker = (*Noop)(nil)
)

type noopConfig struct {
	Outputs map[string]string `json:"outputs" desc:"outputs to set"`
	Delay   time.Duration     `json:"delay" desc:"time to wait before succeeding"`
}

// Describe says what noop is.
func (*Noop) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "noop", Version: Version, Description: "does nothing and succeeds (milestones, drills)",
		Fields: sdk.FieldsOf(noopConfig{})}, nil
}

// Restore waits the optional delay and sets the configured outputs.
func (*Noop) Restore(ctx context.Context, req *sdk.Request, s *sdk.Stream) error {
	var cfg noopConfig
	if err := req.Decode(&cfg); err != nil {
		return err
	}
	if cfg.Delay > 0 && !req.DryRun {
		t := time.NewTimer(cfg.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for k, v := range cfg.Outputs {
		s.Output(k, v)
	}
	if cfg.Delay > 0 {
		s.SetMessage(fmt.Sprintf("done after %s", cfg.Delay))
	}
	return nil
}

// Check answers "not restored": a milestone is passed again on every run.
func (*Noop) Check(context.Context, *sdk.Request) (sdk.CheckResult, error) {
	return sdk.CheckResult{Restored: false, Message: "noop keeps no state"}, nil
}
