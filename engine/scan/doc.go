// Package scan checks a restore point's files before they are restored:
// known-bad hashes and ransom-note names (ioc), files that look encrypted
// (entropy), YARA rules (yara) and ClamAV signatures (clamav).
//
// A Set is built once from the graph's scanner declarations (Compile loads
// the hash lists and checks that the yara and clamscan commands exist and
// accept their rules); Scan then walks a folder recursively, streaming each
// regular file once through every built-in check on a pool of workers, while
// the external commands run beside it. Nothing is written: files are opened
// read-only, symbolic links are neither followed nor scanned.
//
// The outcome is a Verdict and the Findings that led to it (file, scanner,
// rule or hash). A file that cannot be read is a finding that makes the
// point suspicious: a scan never vouches for what it could not read. A
// scanner command that fails (not a match: an error) fails the scan.
package scan
