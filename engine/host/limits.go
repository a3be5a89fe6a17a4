package host

import (
	"fmt"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// Per-step log budget: a Restore's log lines past maxStepLogLines lines or
// maxStepLogBytes bytes are counted, not passed on (nor written to the log
// file); one line at the end says how many there were.
const (
	maxStepLogLines = 20000
	maxStepLogBytes = 8 << 20
)

// outputGate applies a graph's output limits to one call's outputs, as they
// come: past a limit it keeps nothing more and remembers why.
type outputGate struct {
	lim     graphs.Limits
	node    string
	outputs map[string]string
	bytes   int64
	over    string // the first limit passed: the step fails with it
}

func newOutputGate(lim graphs.Limits, node string) *outputGate {
	return &outputGate{lim: lim.Effective(), node: node, outputs: map[string]string{}}
}

// set records one output unless a limit is passed; it reports whether the
// output was kept.
func (g *outputGate) set(key, value string) bool {
	if g.over != "" {
		return false
	}
	if int64(len(value)) > g.lim.OutputValue {
		g.fail(fmt.Sprintf("output %q is %d bytes, over limits.output_value (%s)", short(key), len(value), graphs.FormatSize(g.lim.OutputValue)))
		return false
	}
	size := g.bytes + int64(len(key)+len(value))
	if old, ok := g.outputs[key]; ok {
		size -= int64(len(key) + len(old))
	}
	g.outputs[key] = value
	g.bytes = size
	switch {
	case len(g.outputs) > g.lim.OutputKeys:
		g.fail(fmt.Sprintf("output %q is output number %d, over limits.output_keys (%d)", short(key), len(g.outputs), g.lim.OutputKeys))
	case size > g.lim.NodeOutputs:
		g.fail(fmt.Sprintf("output %q (%d bytes) makes the outputs %d bytes, over limits.node_outputs (%s)", short(key), len(value), size, graphs.FormatSize(g.lim.NodeOutputs)))
	}
	return g.over == ""
}

func (g *outputGate) setAll(m map[string]string) {
	for k, v := range m {
		g.set(k, v)
	}
}

func (g *outputGate) fail(why string) {
	g.over = fmt.Sprintf("node %q: %s; nothing stored (see limits in graphs/FORMAT.md)", g.node, why)
	g.outputs = nil
}

// apply turns res into a failure, without outputs, when a limit was passed.
func (g *outputGate) apply(res step.Result) step.Result {
	if g.over != "" {
		return step.Result{Status: step.Failed, Message: g.over}
	}
	res.Outputs = g.outputs
	return res
}

// short quotes at most 100 bytes of a key.
func short(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// logBudget counts one step's log lines and bytes.
type logBudget struct {
	lines, bytes       int
	dropped, dropped64 int
}

// take reports whether a line of n bytes may be passed on.
func (b *logBudget) take(n int) bool {
	if b.lines >= maxStepLogLines || b.bytes+n > maxStepLogBytes {
		b.dropped++
		b.dropped64 += n
		return false
	}
	b.lines++
	b.bytes += n
	return true
}

// summary is the line that says what was dropped, or "".
func (b *logBudget) summary() string {
	if b.dropped == 0 {
		return ""
	}
	return fmt.Sprintf("%d more log lines (%d bytes) not logged: over the step's log budget of %d lines or %s",
		b.dropped, b.dropped64, maxStepLogLines, graphs.FormatSize(maxStepLogBytes))
}
