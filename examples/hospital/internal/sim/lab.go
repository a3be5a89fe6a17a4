package sim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/examples/hospital/internal/archive"
)

// HPRIM Santé (the French lab-results format) in the small form used here:
//
//	H|~^\&|||LAB-MIDDLEWARE|||||LIS||P|H2.2|20221010120000
//	P|1||INS||FAMILY^GIVEN
//	OBR|1||RESULT_ID|TEST^LABEL
//	OBX|1|NM|TEST^LABEL||VALUE|UNIT|||||F
//	L|1||PATIENTS|RESULTS
//
// The L (end) line carries the counts: a truncated file fails the import.

func (s *Service) handleHPRIMExport(w http.ResponseWriter, r *http.Request) {
	if !s.ready(w) {
		return
	}
	if s.app.ID != "lab-middleware" {
		http.Error(w, "only the lab middleware exports HPRIM", http.StatusNotFound)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "H|~^\\&|||LAB-MIDDLEWARE|||||LIS||P|H2.2|%s\n", time.Now().UTC().Format("20060102150405"))
	rows := s.Rows("pending")
	for i, row := range rows {
		fmt.Fprintf(&b, "P|%d||%s|\n", i+1, row["ins"])
		fmt.Fprintf(&b, "OBR|1||%s|%s^%s\n", row["result_id"], row["test"], row["label"])
		fmt.Fprintf(&b, "OBX|1|NM|%s^%s||%s|%s|||||F\n", row["test"], row["label"], row["value"], row["unit"])
	}
	fmt.Fprintf(&b, "L|1||%d|%d\n", len(rows), len(rows))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, b.String())
}

// ParseHPRIM reads an HPRIM results file into result rows, checking the
// header, the record order and the end line's counts.
func ParseHPRIM(data []byte) ([]Row, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var rows []Row
	var cur Row
	line, patients, ended := 0, 0, false
	for sc.Scan() {
		line++
		f := strings.Split(strings.TrimRight(sc.Text(), "\r"), "|")
		if ended {
			return nil, fmt.Errorf("hprim line %d: data after the L (end) line", line)
		}
		switch {
		case line == 1 && f[0] != "H":
			return nil, fmt.Errorf("hprim line 1: want an H header, got %q", f[0])
		case f[0] == "H":
		case f[0] == "P" && len(f) >= 4:
			patients++
			cur = Row{"ins": f[3]}
		case f[0] == "OBR" && len(f) >= 5 && cur != nil:
			code, label, _ := strings.Cut(f[4], "^")
			cur = Row{"ins": cur["ins"], "result_id": f[3], "test": code, "label": label}
		case f[0] == "OBX" && len(f) >= 7 && cur != nil && cur["result_id"] != "":
			row := Row{"value": f[5], "unit": f[6], "validated": "no", "source": "hprim"}
			for k, v := range cur {
				row[k] = v
			}
			if _, err := strconv.ParseFloat(row["value"], 64); err != nil {
				return nil, fmt.Errorf("hprim line %d: result %s: value %q is not a number", line, row["result_id"], row["value"])
			}
			rows = append(rows, row)
		case f[0] == "L" && len(f) >= 5:
			np, err1 := strconv.Atoi(f[3])
			nr, err2 := strconv.Atoi(f[4])
			if err1 != nil || err2 != nil || np != patients || nr != len(rows) {
				return nil, fmt.Errorf("hprim line %d: end line says %s patients and %s results, file has %d and %d", line, f[3], f[4], patients, len(rows))
			}
			ended = true
		default:
			return nil, fmt.Errorf("hprim line %d: unexpected record %q", line, strings.Join(f, "|"))
		}
	}
	if !ended {
		return nil, fmt.Errorf("hprim: no L (end) line: file truncated")
	}
	return rows, sc.Err()
}

func (s *Service) handleHPRIMImport(w http.ResponseWriter, r *http.Request) {
	if !s.ready(w) {
		return
	}
	if s.app.ID != "lis" {
		http.Error(w, "only the LIS imports HPRIM", http.StatusNotFound)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rows, err := ParseHPRIM(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	for _, row := range rows {
		if err := s.Put("results", row["result_id"], row); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"imported": len(rows)})
}

// WorklistItem is one DICOM modality worklist entry (the attributes that
// matter here: accession number, patient, modality, scheduled date).
type WorklistItem struct {
	Accession string `json:"accession"`
	INS       string `json:"ins"`
	Modality  string `json:"modality"`
	Scheduled string `json:"scheduled"`
	Source    string `json:"source"` // "exams" (restored) or "orders" (received over HL7)
}

func (s *Service) handleWorklist(w http.ResponseWriter, r *http.Request) {
	if !s.ready(w) {
		return
	}
	if s.app.ID != "ris" {
		http.Error(w, "only the RIS serves the worklist", http.StatusNotFound)
		return
	}
	var items []WorklistItem
	for _, e := range s.Rows("exams") {
		if e["status"] == "scheduled" {
			items = append(items, WorklistItem{e["accession"], e["ins"], e["modality"], e["scheduled"], "exams"})
		}
	}
	for _, o := range s.Rows("orders") {
		items = append(items, WorklistItem{o["order_id"], o["ins"], strings.SplitN(o["item"], "-", 2)[0], "", "orders"})
	}
	writeJSON(w, http.StatusOK, items)
}

// vendorTemp tells the example vendor plugin's temporary files (".restore-*",
// left behind when its process is killed mid-copy) from real extra files.
func vendorTemp(rel string) bool { return strings.HasPrefix(path.Base(rel), ".restore-") }

// checkPACSImages verifies the image files restored by the vendor plugin
// against the backup's manifest and checks that every study of the PACS
// index has its files, each a DICOM file (128-byte preamble then "DICM").
func checkPACSImages(env Env, studies *Table) error {
	if studies == nil || len(studies.Rows) == 0 {
		return fmt.Errorf("pacs: no studies in the index (studies.csv)")
	}
	manifest := filepath.Join(env.Backups, "pacs-images.sha256")
	entries, err := archive.ReadManifest(manifest)
	if err != nil {
		return fmt.Errorf("pacs images: %w", err)
	}
	dir := env.Data("pacs-images")
	if _, err := archive.VerifyDirSkipping(dir, entries, vendorTemp); err != nil {
		return fmt.Errorf("pacs images: %w", err)
	}
	for _, uid := range studies.Keys() {
		want, _ := strconv.Atoi(studies.Rows[uid]["files"])
		files, _ := filepath.Glob(filepath.Join(dir, uid, "*.dcm"))
		if len(files) != want || want == 0 {
			return fmt.Errorf("pacs study %s: %d image files, index says %d", uid, len(files), want)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if len(b) < 132 || string(b[128:132]) != "DICM" {
				return fmt.Errorf("pacs study %s: %s is not a DICOM file (no DICM marker at 128)", uid, filepath.Base(f))
			}
		}
	}
	return nil
}
