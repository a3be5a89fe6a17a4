#!/usr/bin/env bash
# make demo: rebuild the reference hospital (examples/hospital/graph.yaml) on
# this machine, from its backups, with reprise. See README.md in this folder.
#
#   1. build the simulator and the backups (archives + SHA-256 manifests);
#   2. `reprise run` restores every node it can: it parks (exit 4) on the
#      biologist's validation, a manual gate;
#   3. `reprise status`, then the biologist approves with `reprise approve`;
#   4. `reprise resume` finishes the rebuild: results to the patient record,
#      re-entry of the paper lab results, reconnection to the outside last.
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

say "Rebuild the hospital (state file: $HOSPITAL_WORK/reprise.db)"
rc=0
show "$REPRISE" run "$GRAPH" || rc=$?
interrupted "$rc"
if [ "$rc" != 4 ]; then
	echo "expected the run to park on the biologist's gate (exit 4), got exit $rc" >&2
	show "$REPRISE" status || true
	exit 1
fi
run=$("$REPRISE" status --json | json_field run)

say "Where the run stands: everything done but what waits for the biologist"
show "$REPRISE" status "$run"

say "The biologist validates the restored lab"
show "$REPRISE" approve "$run" lab-validation --by "Dr Claire Martin (biologist)" \
	--comment "analysers online, reference ranges checked, middleware results reviewed"

say "Resume: results to the patient record, paper re-entry, reconnection last"
rc=0
show "$REPRISE" resume "$run" || rc=$?
interrupted "$rc"

say "Summary"
show "$REPRISE" status "$run"
printf '%s$ bin/reprise log %s | grep -E " approved | succeeded +outside-reconnection "%s\n' "$DIM" "$run" "$RESET"
"$REPRISE" log "$run" | grep -E " approved | succeeded +outside-reconnection " || true
show "$REPRISE" log "$run" --verify
if [ "$rc" != 0 ] || ! check_all_succeeded "$run"; then
	echo "demo: the rebuild did not end with every node succeeded (resume exit $rc)" >&2
	exit 1
fi
show "$REPRISE" report "$run" -o "$HOSPITAL_WORK/report.html" || echo "demo: no report written" >&2
echo "demo: every node succeeded in $(( $(date +%s) - start ))s; run $run in $HOSPITAL_WORK/reprise.db"
cat <<EOF

Open the run in the crisis room (a web dashboard; the token is shown once):
  TOKEN=\$($REPRISE operators add demo --role admin --state "$HOSPITAL_WORK/reprise.db")
  $REPRISE serve --state "$HOSPITAL_WORK/reprise.db"     # then http://127.0.0.1:8080/ and paste the token
In one line:
  $REPRISE operators add demo-\$(date +%s) --role admin --state "$HOSPITAL_WORK/reprise.db" && $REPRISE serve --state "$HOSPITAL_WORK/reprise.db"
EOF
