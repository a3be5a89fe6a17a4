package sdk

import (
	"context"
	"testing"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

type benchNoop struct{}

func (benchNoop) Describe(context.Context) (Info, error) { return Info{Name: "noop"}, nil }

func (benchNoop) Restore(_ context.Context, req *Request, s *Stream) error {
	var cfg struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := req.Decode(&cfg); err != nil {
		return err
	}
	for k, v := range cfg.Outputs {
		s.Output(k, v)
	}
	return nil
}

// BenchmarkRestorePair measures a Restore round trip over an in-process
// gRPC pair (no TLS, no process boundary): the SDK's and gRPC's own cost.
func BenchmarkRestorePair(b *testing.B) {
	c := pair(b, benchNoop{})
	req := &pluginv1.StepRequest{NodeId: "m", ConfigJson: []byte(`{"outputs":{"phase":"2"}}`)}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st, err := c.Restore(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			for {
				ev, err := st.Recv()
				if err != nil {
					b.Fatal(err)
				}
				if ev.GetResult() != nil {
					break
				}
			}
		}
	})
}
