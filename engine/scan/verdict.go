package scan

// Verdict is what a scan concludes about a restore point. Verdicts are
// stored and written as they read ("clean").
type Verdict string

// The verdicts, from best to worst (see Rank).
const (
	// Clean: no scanner found anything.
	Clean Verdict = "clean"
	// Suspicious: something an operator must look at (a few files that
	// look encrypted, a YARA rule tagged "suspicious", an unreadable file).
	Suspicious Verdict = "suspicious"
	// Encrypted: the share of files that look encrypted reached the
	// threshold, or a ransom note's name was found.
	Encrypted Verdict = "encrypted"
	// Compromised: a known-bad hash, a YARA rule or a ClamAV signature
	// matched.
	Compromised Verdict = "compromised"
)

// Verdicts lists every Verdict from best to worst.
var Verdicts = []Verdict{Clean, Suspicious, Encrypted, Compromised}

// Rank orders verdicts: clean 0, suspicious 1, encrypted 2, compromised 3
// (an unknown value ranks as suspicious).
func (v Verdict) Rank() int {
	switch v {
	case Clean:
		return 0
	case Encrypted:
		return 2
	case Compromised:
		return 3
	default:
		return 1
	}
}

// Worst returns the worse of two verdicts.
func Worst(a, b Verdict) Verdict {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

// Finding is one thing a scanner found.
type Finding struct {
	// File is the path relative to the scanned folder, with '/'
	// separators.
	File    string `json:"file"`
	Scanner string `json:"scanner"` // the scanner's name as declared
	Type    Type   `json:"type"`
	// Rule is what matched: the SHA-256 on a hash list, the name pattern,
	// the YARA rule or the ClamAV signature; for entropy, "entropy".
	Rule    string  `json:"rule"`
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail,omitempty"`
}

// ScannerResult is one scanner's part of a scan.
type ScannerResult struct {
	Name    string  `json:"name"`
	Type    Type    `json:"type"`
	Verdict Verdict `json:"verdict"`
	// Summary says what was looked at in a few words
	// ("3 of 120 files look encrypted (threshold 10%)").
	Summary  string `json:"summary"`
	Findings int    `json:"findings"` // all of them, also those beyond MaxFindings
}

// Result is the outcome of scanning one folder.
type Result struct {
	Verdict  Verdict         `json:"verdict"`
	Scanners []ScannerResult `json:"scanners"`
	// Findings are sorted by file then scanner; at most
	// Options.MaxFindings per scanner are kept.
	Findings []Finding `json:"findings,omitempty"`
	Files    int64     `json:"files"`
	Bytes    int64     `json:"bytes"`
}
