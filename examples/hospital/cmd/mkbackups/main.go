// Command mkbackups builds the hospital example's "backups" from the seed
// data shipped in examples/hospital/seed:
//
//	OUT/NAME.tar.gz                   one archive per component, with MANIFEST.sha256 inside
//	OUT/pki.tar.gz                    a PKI generated on the spot (root, issuing CA, server certificates)
//	OUT/pacs-images/ + .sha256        the imaging studies as the PACS vendor backs them up: files plus a manifest
//	OUT/backup-vault.tar.gz (+.sha256) the backup servers' catalog: the SHA-256 of every other backup
//	POINTS/NAME/ID/                    with -points: restore points of four databases, for the scanners
//
// The archives are deterministic (same seed, same bytes) except the PKI,
// which is kept when it exists so that running mkbackups again changes
// nothing. The whole set is written beside OUT and swapped in at the end.
//
//	go run ./examples/hospital/cmd/mkbackups -seed examples/hospital/seed -out examples/hospital/backups
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/reprise-si/reprise/examples/hospital/internal/backups"
)

func main() {
	seed := flag.String("seed", "examples/hospital/seed", "seed data folder")
	out := flag.String("out", "examples/hospital/backups", "backups folder to (re)build")
	pts := flag.String("points", "", "also write the restore points of graph.yaml's scanned databases here (copies of their archives, one encrypted, one with an implant, one with a web shell)")
	flag.Parse()
	if err := backups.Build(*seed, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkbackups:", err)
		os.Exit(1)
	}
	if *pts != "" {
		if err := backups.BuildPoints(*out, *pts); err != nil {
			fmt.Fprintln(os.Stderr, "mkbackups: restore points:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("mkbackups: backups of %s rebuilt in %s\n", *seed, *out)
}
