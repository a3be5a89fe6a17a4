#!/bin/sh
# check.sh FILE: exit 0 when restored/FILE is there and matches the manifest
# (the node is already restored), 1 otherwise.
set -eu
file=$1
[ -f "restored/$file" ] || exit 1
want=$(awk -v f="$file" '$2 == f { print $1 }' backup/SHA256SUMS)
[ "$(sha256sum "restored/$file" | cut -d' ' -f1)" = "$want" ]
