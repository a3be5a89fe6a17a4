#!/bin/sh
# restore.sh FILE: copy FILE from backup/ into restored/, refusing it unless its
# SHA-256 matches backup/SHA256SUMS, and report its line count as an output.
set -eu
file=$1
mkdir -p restored
want=$(awk -v f="$file" '$2 == f { print $1 }' backup/SHA256SUMS)
[ -n "$want" ] || { echo "$file: not in backup/SHA256SUMS" >&2; exit 1; }
got=$(sha256sum "backup/$file" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "$file: sha256 $got, manifest says $want" >&2; exit 1; }
cp "backup/$file" "restored/$file.tmp" && mv "restored/$file.tmp" "restored/$file"
echo "restored $file ($got)"
# Records (lines that are not comments or the CSV header) become the output "records".
records=$(grep -v '^#' "restored/$file" | tail -n +2 | grep -c . || true)
case "$file" in *.csv) ;; *) records=$(grep -vc '^#' "restored/$file" || true) ;; esac
echo "records=$records" >> "$REPRISE_OUTPUT"
