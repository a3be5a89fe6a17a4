package sdk

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

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

// BenchmarkServeFrame measures the plugin side of one Restore in a session
// without any transport: decode of the frame, the call (JSON decode of
// `with`, one output event), encoding of the answer.
func BenchmarkServeFrame(b *testing.B) {
	s := newServer(benchNoop{})
	req := &pluginv1.StepRequest{RunId: "run-1", NodeId: "milestone", Kind: "application", Plugin: "noop",
		Attempt: 1, ConfigJson: []byte(`{"outputs":{"phase":"2"}}`)}
	up, err := proto.Marshal(&pluginv1.SessionUp{Frames: []*pluginv1.CallFrame{{Id: 1, Op: pluginv1.Op_OP_RESTORE, Request: req}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var m pluginv1.SessionUp
		if err := proto.Unmarshal(up, &m); err != nil {
			b.Fatal(err)
		}
		out := newOutbox()
		s.serveFrame(ctx, m.GetFrames()[0], out)
		if len(out.frames) != 2 || out.frames[1].GetEvent().GetResult() == nil {
			b.Fatalf("answer = %v, want an output and the result", out.frames)
		}
		if _, err := proto.Marshal(&pluginv1.SessionDown{Frames: out.frames}); err != nil {
			b.Fatal(err)
		}
	}
}
