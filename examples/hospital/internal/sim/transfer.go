package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// transfer is a batch flow between two applications: each source row gives
// one target row (derive), then every source row must have exactly one.
type transfer struct {
	srcTable, dstTable string
	keep               func(Row) bool
	derive             func(Row) (string, Row)
	link               string // the target column holding the source key
}

var tariffs = map[string]int{"06M041": 2980, "14Z13": 3650, "08C241": 6120, "04M051": 4210, "90Z00Z": 0}

var transfers = map[[2]string]transfer{
	{"pmsi", "billing"}: {srcTable: "rum", dstTable: "claims", link: "rum_id",
		derive: func(r Row) (string, Row) {
			return "CL" + r["rum_id"][3:], Row{"claim_id": "CL" + r["rum_id"][3:], "rum_id": r["rum_id"], "amount_eur": strconv.Itoa(tariffs[r["ghm"]])}
		}},
	{"billing", "finance"}: {srcTable: "claims", dstTable: "receivables", link: "claim_id",
		derive: func(r Row) (string, Row) {
			return "RC" + r["claim_id"], Row{"receivable_id": "RC" + r["claim_id"], "claim_id": r["claim_id"], "amount_eur": r["amount_eur"]}
		}},
	{"sterilisation", "theatre"}: {srcTable: "sets", dstTable: "sets", link: "set_id",
		keep:   func(r Row) bool { return r["status"] == "sterile" },
		derive: func(r Row) (string, Row) { return r["set_id"], r }},
}

// Transfer runs the batch flow from -> to and checks it; hr -> ad is a
// reconciliation of the HR staff list with the restored AD accounts.
func Transfer(ctx context.Context, w io.Writer, env Env, from, to string) (Outputs, error) {
	if from == "hr" && to == "ad" {
		return reconcileHRAD(ctx, w, env)
	}
	t, ok := transfers[[2]string{from, to}]
	if !ok {
		return nil, fmt.Errorf("no batch flow from %s to %s", from, to)
	}
	src, _ := FindApp(from)
	dst, _ := FindApp(to)
	var rows []Row
	if err := getJSON(ctx, env.URL(src)+"/tables/"+t.srcTable, &rows); err != nil {
		return nil, err
	}
	var existing []Row
	if err := getJSON(ctx, env.URL(dst)+"/tables/"+t.dstTable, &existing); err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, e := range existing {
		count[e[t.link]]++
	}
	sent, wantKeys := 0, map[string]bool{}
	for _, r := range rows {
		if t.keep != nil && !t.keep(r) {
			continue
		}
		wantKeys[r[t.link]] = true
		if count[r[t.link]] > 0 {
			continue
		}
		key, row := t.derive(r)
		if err := putJSON(ctx, env.URL(dst)+"/tables/"+t.dstTable+"/"+key, row); err != nil {
			return nil, err
		}
		sent++
	}
	if err := getJSON(ctx, env.URL(dst)+"/tables/"+t.dstTable, &existing); err != nil {
		return nil, err
	}
	count = map[string]int{}
	for _, e := range existing {
		if t.keep != nil && !t.keep(e) {
			return nil, fmt.Errorf("%s %s in %s: status %q must not be there", t.dstTable, e[t.link], to, e["status"])
		}
		count[e[t.link]]++
	}
	for k := range wantKeys {
		if count[k] != 1 {
			return nil, fmt.Errorf("%s %s from %s: %d %s in %s, want exactly 1", t.link, k, from, count[k], t.dstTable, to)
		}
	}
	fmt.Fprintf(w, "%s.%s -> %s.%s: %d sent now, %d of %d present exactly once\n", from, t.srcTable, to, t.dstTable, sent, len(wantKeys), len(wantKeys))
	return Outputs{"sent": fmt.Sprint(sent), "total": fmt.Sprint(len(wantKeys))}, nil
}

func reconcileHRAD(ctx context.Context, w io.Writer, env Env) (Outputs, error) {
	hr, _ := FindApp("hr")
	var staff []Row
	if err := getJSON(ctx, env.URL(hr)+"/tables/staff", &staff); err != nil {
		return nil, err
	}
	users, err := ReadCSV("users", filepath.Join(env.Data("ad"), "users.csv"))
	if err != nil {
		return nil, fmt.Errorf("ad (restore it first): %w", err)
	}
	active := map[string]bool{}
	for _, s := range staff {
		if s["status"] != "active" {
			continue
		}
		active[s["sam"]] = true
		u, ok := users.Rows[s["sam"]]
		if !ok || u["enabled"] != "true" {
			return nil, fmt.Errorf("staff %s (%s) is active in HR but has no enabled AD account", s["staff_id"], s["sam"])
		}
	}
	for sam, u := range users.Rows {
		if u["enabled"] == "true" && u["groups"] == "Staff" && !active[sam] {
			return nil, fmt.Errorf("AD account %s is enabled but matches no active HR staff: disable it", sam)
		}
	}
	fmt.Fprintf(w, "hr -> ad: %d active staff, each with one enabled AD account; no orphan staff account\n", len(active))
	return Outputs{"staff": fmt.Sprint(len(active))}, nil
}
