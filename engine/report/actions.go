package report

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Action is one journaled action in the authorities' timeline (the main
// courante an incident declaration asks for): one per journal entry, in
// order, each with the entry's hash so that it can be checked against the
// journal (`reprise log --verify`).
type Action struct {
	Seq          uint64 `json:"seq"`
	TimeUTC      string `json:"time_utc"`   // RFC 3339, UTC
	TimeLocal    string `json:"time_local"` // RFC 3339 in the report's time zone
	Who          string `json:"who"`        // the operator, or "reprise" for the engine's own acts
	What         string `json:"what"`       // the journal entry's type
	Node         string `json:"node,omitempty"`
	Zone         string `json:"zone,omitempty"`
	RestorePoint string `json:"restore_point,omitempty"`
	Verdict      string `json:"verdict,omitempty"`
	Detail       string `json:"detail,omitempty"`
	Hash         string `json:"hash"`
}

// actions turns the journal into the timeline's rows.
func actions(journal []state.Entry, g *graphs.Graph, loc *time.Location) []Action {
	if loc == nil {
		loc = time.UTC
	}
	out := make([]Action, 0, len(journal))
	for _, e := range journal {
		a := Action{Seq: e.Seq, TimeUTC: e.Time.UTC().Format(time.RFC3339Nano), TimeLocal: e.Time.In(loc).Format(time.RFC3339Nano),
			Who: e.By, What: string(e.Type), Node: e.NodeID, RestorePoint: e.Data["point"], Verdict: e.Data["verdict"],
			Detail: e.Message, Hash: e.Hash}
		if a.Who == "" {
			a.Who = "reprise"
		}
		if z := e.Data["zone"]; z != "" {
			a.Zone = z
		} else if g != nil && e.NodeID != "" {
			if n, ok := g.Node(e.NodeID); ok {
				a.Zone = n.Zone
			}
		}
		if e.Type == state.EntryPointOverride {
			a.Detail = e.Data["action"] + " " + e.Data["point"] + ": " + e.Message
		}
		out = append(out, a)
	}
	return out
}

// TimelineCSV writes every journaled action as CSV (RFC 4180) with a
// header row: seq, time_utc, time_local, who, what, node, zone,
// restore_point, verdict, detail, hash.
func (r *Report) TimelineCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"seq", "time_utc", "time_local", "who", "what", "node", "zone", "restore_point", "verdict", "detail", "hash"}); err != nil {
		return err
	}
	for _, a := range actions(r.journal, r.graph, r.loc) {
		if err := cw.Write([]string{strconv.FormatUint(a.Seq, 10), a.TimeUTC, a.TimeLocal, csvSafe(a.Who), a.What, a.Node, a.Zone,
			a.RestorePoint, a.Verdict, csvSafe(a.Detail), a.Hash}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a spreadsheet from reading free text as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}

// TimelineJSON writes every journaled action as one JSON object:
// {"run", "journal": {entries, ok, head}, "actions": [...]}.
func (r *Report) TimelineJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Schema  string   `json:"schema"`
		Run     string   `json:"run"`
		Journal Journal  `json:"journal"`
		Actions []Action `json:"actions"`
	}{"reprise.timeline/v1", r.Run.ID, r.Journal, actions(r.journal, r.graph, r.loc)})
}
