package graphs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// WriteJSON writes the plan as one JSON object (schema: PLAN_JSON.md): the
// same fields as json.Marshal(p), laid out with one wave and one node
// detail per line, and streamed, so that a 100,000-node plan is not built
// as one indented document in memory first.
func (p *Plan) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var err error
	val := func(v any) []byte {
		buf.Reset()
		if e := enc.Encode(v); e != nil && err == nil {
			err = e
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	field := func(name string, v any, last bool) {
		bw.WriteString("  ")
		bw.Write(val(name))
		bw.WriteString(": ")
		bw.Write(val(v))
		if !last {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
	}
	bw.WriteString("{\n")
	field("file", p.File, false)
	if p.Name != "" {
		field("name", p.Name, false)
	}
	field("hash", p.Hash, false)
	field("nodes", p.Nodes, false)
	field("edges", p.Edges, false)
	if len(p.Targets) > 0 {
		field("targets", p.Targets, false)
	}
	field("parallelism", p.Parallelism, false)
	bw.WriteString("  \"waves\": [")
	for i, wave := range p.Waves {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(val(wave))
	}
	if len(p.Waves) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("],\n")
	field("critical_path", p.CriticalPath, false)
	field("critical_path_seconds", p.CriticalPathSeconds, false)
	field("estimate_seconds", p.EstimateSeconds, false)
	bw.WriteString("  \"details\": [")
	for i := range p.Details {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(val(&p.Details[i]))
	}
	if len(p.Details) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	if err != nil {
		return err
	}
	return bw.Flush()
}
