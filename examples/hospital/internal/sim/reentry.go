package sim

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
)

// reentrySpec says where the paper records of one service go.
type reentrySpec struct {
	paper  string // file under seed/paper
	app    string
	table  string
	insCol string // the patient column, checked against the admissions
	// derive, when set, turns a paper row into the target row and key.
	derive func(Row) (string, Row)
}

var reentries = map[string][]reentrySpec{
	"admissions": {
		{paper: "admissions.csv", app: "gam", table: "patients", derive: func(r Row) (string, Row) {
			return r["ins"], Row{"ins": r["ins"], "family": r["family"], "given": r["given"], "birth_date": r["birth_date"], "sex": r["sex"]}
		}},
		{paper: "admissions.csv", app: "gam", table: "stays", derive: func(r Row) (string, Row) {
			return r["stay_id"], Row{"stay_id": r["stay_id"], "ins": r["ins"], "unit": r["unit"], "admitted": r["admitted"], "discharged": ""}
		}},
	},
	"emergency": {{paper: "emergency.csv", app: "emergency", table: "passages", insCol: "ins"}},
	"lab":       {{paper: "lab.csv", app: "lis", table: "results", insCol: "ins"}},
	"pharmacy":  {{paper: "pharmacy.csv", app: "pharmacy", table: "dispensations", insCol: "ins"}},
	"icu":       {{paper: "icu.csv", app: "icu", table: "charts", insCol: "ins"}},
	"maternity": {{paper: "maternity.csv", app: "maternity", table: "births", insCol: "mother_ins"}},
	"theatre":   {{paper: "theatre.csv", app: "theatre", table: "interventions", insCol: "ins"}},
	"dictation": {{paper: "dictation.csv", app: "dpi", table: "documents", insCol: "ins"}},
	"pmsi": {{paper: "admissions.csv", app: "pmsi", table: "rum", insCol: "ins", derive: func(r Row) (string, Row) {
		id := "RUM" + r["stay_id"][1:]
		return id, Row{"rum_id": id, "stay_id": r["stay_id"], "ghm": "90Z00Z"}
	}}},
}

// ReentryNames lists the services with a re-entry step.
func ReentryNames() []string {
	var out []string
	for k := range reentries {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Reentry types the paper records of service name back into its
// application: every row's patient must be known to the admissions (or, for
// admissions, carry a valid INS), then every paper record must be present
// as written and the table's count must have grown by exactly the records
// that were new. Running it again adds nothing.
func Reentry(ctx context.Context, w io.Writer, env Env, name string) (Outputs, error) {
	specs, ok := reentries[name]
	if !ok {
		return nil, fmt.Errorf("no re-entry for %q (want one of %v)", name, ReentryNames())
	}
	out := Outputs{}
	for _, sp := range specs {
		n, err := reenter(ctx, w, env, name, sp)
		if err != nil {
			return nil, err
		}
		out[sp.table] = fmt.Sprint(n)
	}
	return out, nil
}

func reenter(ctx context.Context, w io.Writer, env Env, name string, sp reentrySpec) (int, error) {
	paper, err := ReadCSV(name, filepath.Join(env.Seed, "paper", sp.paper))
	if err != nil {
		return 0, err
	}
	if len(paper.Rows) == 0 {
		return 0, fmt.Errorf("paper %s: no records", sp.paper)
	}
	app, _ := FindApp(sp.app)
	base := env.URL(app) + "/tables/" + sp.table
	var before []Row
	if err := getJSON(ctx, base, &before); err != nil {
		return 0, err
	}
	rows := map[string]Row{}
	for _, k := range paper.Keys() {
		key, row := k, paper.Rows[k]
		if sp.derive != nil {
			key, row = sp.derive(paper.Rows[k])
		}
		rows[key] = row
	}
	added := 0
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		row := rows[key]
		ins := row["ins"]
		if sp.insCol != "" {
			ins = paper.Rows[firstKey(paper, sp, key)][sp.insCol]
			if _, err := lookupPatient(ctx, env, ins); err != nil {
				return 0, fmt.Errorf("paper %s record %s: %w", sp.paper, key, err)
			}
		} else if err := CheckINS(ins); err != nil {
			return 0, fmt.Errorf("paper %s record %s: %w", sp.paper, key, err)
		}
		var existing Row
		if err := getJSON(ctx, base+"/"+key, &existing); err == nil {
			continue // already typed in (by an earlier attempt)
		}
		if err := putJSON(ctx, base+"/"+key, row); err != nil {
			return 0, err
		}
		added++
	}
	var after []Row
	if err := getJSON(ctx, base, &after); err != nil {
		return 0, err
	}
	if len(after) != len(before)+added {
		return 0, fmt.Errorf("%s.%s: %d records after re-entry, want %d before + %d added", sp.app, sp.table, len(after), len(before), added)
	}
	for _, key := range keys {
		var got Row
		if err := getJSON(ctx, base+"/"+key, &got); err != nil {
			return 0, fmt.Errorf("%s.%s %s: %w", sp.app, sp.table, key, err)
		}
		for col, v := range rows[key] {
			if got[col] != v {
				return 0, fmt.Errorf("%s.%s %s: %s is %q, paper says %q", sp.app, sp.table, key, col, got[col], v)
			}
		}
	}
	fmt.Fprintf(w, "%s: %d paper records (%s) -> %s.%s: %d added now, %d already there; %d -> %d records, every paper record checked\n",
		name, len(rows), sp.paper, sp.app, sp.table, added, len(rows)-added, len(before), len(after))
	return len(after), nil
}

// firstKey maps a derived key back to its paper row key.
func firstKey(paper *Table, sp reentrySpec, key string) string {
	if sp.derive == nil {
		return key
	}
	for k, r := range paper.Rows {
		if dk, _ := sp.derive(r); dk == key {
			return k
		}
	}
	return key
}
