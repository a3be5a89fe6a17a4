#!/usr/bin/env bash
# make demo: rebuild the reference hospital (examples/hospital/graph.yaml) on
# this machine, from its backups, with reprise. See README.md in this folder.
#
#   1. build the simulator and the backups (archives + SHA-256 manifests);
#   2. `reprise run` rebuilds the trusted core (evidence of the attacked
#      machines first) and parks (exit 4): the next zone waits for it to be
#      certified;
#   3. each zone is certified (`reprise certify … --by NAME`) once rebuilt,
#      the biologist approves her gate, and `reprise resume` goes on: the
#      databases' restore points are scanned newest first (an encrypted one,
#      one after the incident, one with an implant, one with a web shell are
#      passed over), results reach the patient record, paper is re-entered,
#      and the outside world is reconnected last;
#   4. the report (zones, verdicts, data lost per database) and the
#      authorities' timeline (CSV) are written.
#
# Exit 0 only when every node succeeded. The hospital's services are stopped
# on the way out, whatever happens (failure, Ctrl-C).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

trap stop_services EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

start=$(date +%s)
prepare
cd "$HOSPITAL_WORK"

say "Rebuild the hospital, trusted core first (state file: $HOSPITAL_WORK/reprise.db)"
rc=0
show "$REPRISE" run "$GRAPH" || rc=$?
interrupted "$rc"
if [ "$rc" != 4 ]; then
	echo "expected the run to park once the trusted core is rebuilt, for its certification (exit 4), got exit $rc" >&2
	show "$REPRISE" status || true
	exit 1
fi
run=$("$REPRISE" status --json | json_field run)

say "Where the run stands: the core is rebuilt, the other zones wait for its certification"
show "$REPRISE" status "$run"

drive "$run" "$rc"

say "Restore points: each scanned newest first, the bad ones rejected"
printf '%s$ bin/reprise log %s | grep -E "point-(scanned|skipped|chosen)"%s\n' "$DIM" "$run" "$RESET"
"$REPRISE" log "$run" | grep -E "point-(scanned|skipped|chosen)" || true

say "Summary"
show "$REPRISE" status "$run"
printf '%s$ bin/reprise log %s | grep -E " approved | zone-certified | succeeded +(evidence-|outside-reconnection)"%s\n' "$DIM" "$run" "$RESET"
"$REPRISE" log "$run" | grep -E " approved | zone-certified | succeeded +(evidence-|outside-reconnection)" || true
show "$REPRISE" log "$run" --verify
if [ "$rc" != 0 ] || ! check_all_succeeded "$run"; then
	echo "demo: the rebuild did not end with every node succeeded (resume exit $rc)" >&2
	exit 1
fi
show "$REPRISE" report "$run" -o "$HOSPITAL_WORK/report.html" || echo "demo: no report written" >&2
show "$REPRISE" report "$run" --format timeline -o "$HOSPITAL_WORK/main-courante.csv" || echo "demo: no timeline written" >&2
echo "demo: every node succeeded in $(( $(date +%s) - start ))s; run $run in $HOSPITAL_WORK/reprise.db"
cat <<EOF

Open the run in the crisis room (a web dashboard; the token is shown once):
  TOKEN=\$($REPRISE operators add demo --role admin --state "$HOSPITAL_WORK/reprise.db")
  $REPRISE serve --state "$HOSPITAL_WORK/reprise.db"     # then http://127.0.0.1:8080/ and paste the token
In one line:
  $REPRISE operators add demo-\$(date +%s) --role admin --state "$HOSPITAL_WORK/reprise.db" && $REPRISE serve --state "$HOSPITAL_WORK/reprise.db"
EOF
