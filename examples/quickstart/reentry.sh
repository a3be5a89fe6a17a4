#!/bin/sh
# reentry.sh BEFORE: load the results written on paper during degraded mode
# into the restored lab results, once, and check the count: BEFORE (the lab's
# record count after its restore) plus the paper records.
set -eu
before=$1
paper=$(tail -n +2 backup/paper-results.csv | grep -c .)
if ! grep -q '^# re-entered' restored/lab-results.csv; then
  { echo '# re-entered from paper'; tail -n +2 backup/paper-results.csv; } >> restored/lab-results.csv
fi
now=$(grep -v '^#' restored/lab-results.csv | tail -n +2 | grep -c .)
if [ "$now" -ne $((before + paper)) ]; then
  echo "lab has $now results, want $before + $paper from paper" >&2
  exit 1
fi
echo "lab results: $before restored + $paper re-entered from paper = $now"
echo "results=$now" >> "$REPRISE_OUTPUT"
