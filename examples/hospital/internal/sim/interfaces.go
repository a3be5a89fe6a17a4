package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// controlID makes a message control id unique to this step attempt.
func controlID() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%s/%d", os.Getenv("REPRISE_RUN"), os.Getenv("REPRISE_NODE"), os.Getenv("REPRISE_ATTEMPT"), time.Now().UnixNano())))
	return "T" + hex.EncodeToString(h[:])[:15]
}

// HL7Check has app from send a test message of msgType to app to through
// the EAI over MLLP, requires an AA acknowledgement, then looks the message,
// the patient and the record it carries up in the receiver's API.
func HL7Check(ctx context.Context, w io.Writer, env Env, msgType, from, to string) (Outputs, error) {
	src, err := FindApp(from)
	if err != nil {
		return nil, err
	}
	dst, err := FindApp(to)
	if err != nil {
		return nil, err
	}
	ctrl := controlID()
	var res SendResult
	if err := postJSON(ctx, env.URL(src)+"/hl7/send", SendRequest{Type: msgType, To: to, Control: ctrl}, &res); err != nil {
		return nil, fmt.Errorf("%s %s -> %s: %w", msgType, from, to, err)
	}
	fmt.Fprintf(w, "%s %s -> EAI -> %s, control %s, patient %s; ACK:\n  %s\n", msgType, from, to, ctrl, res.INS, strings.ReplaceAll(strings.TrimSpace(res.Ack), "\n", "\n  "))
	if res.Code != "AA" {
		return nil, fmt.Errorf("%s %s -> %s: ACK %s (want AA): %s", msgType, from, to, res.Code, res.Text)
	}
	var inbox Row
	if err := getJSON(ctx, env.URL(dst)+"/tables/inbox/"+ctrl, &inbox); err != nil {
		return nil, fmt.Errorf("%s acknowledged but not filed by %s: %w", ctrl, to, err)
	}
	if inbox["type"] != msgType {
		return nil, fmt.Errorf("%s filed by %s as %q, sent as %q", ctrl, to, inbox["type"], msgType)
	}
	want, err := lookupPatient(ctx, env, res.INS)
	if err != nil {
		return nil, err
	}
	var got Row
	if err := getJSON(ctx, env.URL(dst)+"/tables/patients/"+res.INS, &got); err != nil {
		return nil, fmt.Errorf("patient %s not visible in %s: %w", res.INS, to, err)
	}
	if got["family"] != want["family"] || got["given"] != want["given"] {
		return nil, fmt.Errorf("patient %s is %s %s in %s but %s %s in the admissions", res.INS, got["given"], got["family"], to, want["given"], want["family"])
	}
	var rec Row
	if err := getJSON(ctx, env.URL(dst)+"/tables/"+res.Table+"/"+res.Key, &rec); err != nil {
		return nil, fmt.Errorf("%s %s not visible in %s: %w", res.Table, res.Key, to, err)
	}
	if rec["ins"] != res.INS {
		return nil, fmt.Errorf("%s %s in %s is for patient %s, sent for %s", res.Table, res.Key, to, rec["ins"], res.INS)
	}
	fmt.Fprintf(w, "%s: patient %s %s (%s) and %s %s visible in %s's API\n", to, got["given"], got["family"], res.INS, strings.TrimSuffix(res.Table, "s"), res.Key, to)
	return Outputs{"control": ctrl, "ack": res.Code, "ins": res.INS}, nil
}

// HPRIMCheck moves the lab middleware's pending results to the LIS as an
// HPRIM file and checks that every one arrived with its value.
func HPRIMCheck(ctx context.Context, w io.Writer, env Env, from, to string) (Outputs, error) {
	src, err := FindApp(from)
	if err != nil {
		return nil, err
	}
	dst, err := FindApp(to)
	if err != nil {
		return nil, err
	}
	body, err := do(ctx, "GET", env.URL(src)+"/hprim/export", nil, "")
	if err != nil {
		return nil, err
	}
	var imported map[string]int
	resp, err := do(ctx, "POST", env.URL(dst)+"/hprim/import", strings.NewReader(string(body)), "text/plain")
	if err != nil {
		return nil, err
	}
	if err := jsonUnmarshal(resp, &imported); err != nil {
		return nil, err
	}
	var pending []Row
	if err := getJSON(ctx, env.URL(src)+"/tables/pending", &pending); err != nil {
		return nil, err
	}
	if imported["imported"] != len(pending) || len(pending) == 0 {
		return nil, fmt.Errorf("hprim: %d results imported into %s, %d pending in %s", imported["imported"], to, len(pending), from)
	}
	for _, p := range pending {
		var r Row
		if err := getJSON(ctx, env.URL(dst)+"/tables/results/"+p["result_id"], &r); err != nil {
			return nil, fmt.Errorf("hprim result %s missing in %s: %w", p["result_id"], to, err)
		}
		if r["value"] != p["value"] || r["ins"] != p["ins"] {
			return nil, fmt.Errorf("hprim result %s: %s has %s for %s, middleware %s for %s", p["result_id"], to, r["value"], r["ins"], p["value"], p["ins"])
		}
	}
	fmt.Fprintf(w, "hprim: %d lines sent %s -> %s, %d results imported and matched one by one\n", strings.Count(string(body), "\n"), from, to, len(pending))
	return Outputs{"results": fmt.Sprint(len(pending))}, nil
}

// WorklistCheck feeds the RIS's DICOM modality worklist to the PACS and
// checks that every completed exam's study is in the PACS index.
func WorklistCheck(ctx context.Context, w io.Writer, env Env, from, to string) (Outputs, error) {
	src, err := FindApp(from)
	if err != nil {
		return nil, err
	}
	dst, err := FindApp(to)
	if err != nil {
		return nil, err
	}
	var items []WorklistItem
	if err := getJSON(ctx, env.URL(src)+"/worklist", &items); err != nil {
		return nil, err
	}
	ordered := 0
	for _, it := range items {
		if err := putJSON(ctx, env.URL(dst)+"/tables/worklist/"+it.Accession, Row{"accession": it.Accession, "ins": it.INS, "modality": it.Modality, "scheduled": it.Scheduled}); err != nil {
			return nil, err
		}
		if it.Source == "orders" {
			ordered++
		}
	}
	if ordered == 0 {
		return nil, fmt.Errorf("worklist: no entry from an HL7 order (has the ORM^O01 to the RIS passed?)")
	}
	var wl []Row
	if err := getJSON(ctx, env.URL(dst)+"/tables/worklist", &wl); err != nil {
		return nil, err
	}
	if len(wl) < len(items) {
		return nil, fmt.Errorf("worklist: %s holds %d entries, %s sent %d", to, len(wl), from, len(items))
	}
	var exams []Row
	if err := getJSON(ctx, env.URL(src)+"/tables/exams", &exams); err != nil {
		return nil, err
	}
	done := 0
	for _, e := range exams {
		if e["status"] != "completed" {
			continue
		}
		var st Row
		if err := getJSON(ctx, env.URL(dst)+"/tables/studies/"+e["study_uid"], &st); err != nil {
			return nil, fmt.Errorf("exam %s: study %s not in the PACS: %w", e["accession"], e["study_uid"], err)
		}
		if st["accession"] != e["accession"] {
			return nil, fmt.Errorf("study %s: accession %s in the PACS, %s in the RIS", e["study_uid"], st["accession"], e["accession"])
		}
		done++
	}
	fmt.Fprintf(w, "worklist: %d entries (%d from HL7 orders) in the PACS; %d completed exams matched to their studies\n", len(items), ordered, done)
	return Outputs{"worklist": fmt.Sprint(len(items)), "studies": fmt.Sprint(done)}, nil
}
