#!/usr/bin/env bash
# make demo-resume: the rebuild of the reference hospital is killed with
# SIGKILL part-way (reprise crashes), `reprise status` shows where it
# stopped, `reprise resume` finishes it, and the ledger proves that no step
# that had completed ran again.
#
# Every exec step of the graph appends "NODE ATTEMPT" to work/ledger when it
# runs. After the kill, the nodes that had succeeded must each appear exactly
# once in the ledger at the end; a node that was running when the process
# died may run again (reprise asks its check first).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KILL_AFTER=${KILL_AFTER:-40} # kill once this many nodes have succeeded

trap stop_services EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

start=$(date +%s)
prepare
cd "$HOSPITAL_WORK"

say "Rebuild the trusted core, then certify it"
rc=0
show "$REPRISE" run "$GRAPH" --parallelism 2 --quiet || rc=$?
interrupted "$rc"
if [ "$rc" != 4 ]; then
	echo "expected the run to park once the trusted core is rebuilt (exit 4), got exit $rc" >&2
	exit 1
fi
run=$("$REPRISE" status --json | json_field run)
certify_ready "$run"

say "Go on with the other zones in the background, 2 steps at a time"
printf '%s$ bin/reprise resume %s --parallelism 2 &%s\n' "$DIM" "$run" "$RESET"
"$REPRISE" resume "$run" --parallelism 2 --quiet &
pid=$!

n=0
for _ in $(seq 1 600); do
	n=$(succeeded_count || true)
	[ "${n:-0}" -ge "$KILL_AFTER" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if ! kill -0 "$pid" 2>/dev/null; then
	echo "the run ended before $KILL_AFTER nodes succeeded: nothing to interrupt" >&2
	exit 1
fi
# reprise crashes: SIGKILL to it and to its plugin processes (its children).
# The steps they had launched run in their own process groups: like restore
# jobs on other servers, they finish by themselves, and the services already
# started live on in their own sessions.
plugins=$(cat /proc/"$pid"/task/*/children 2>/dev/null | tr '\n' ' ' || true)
steps=$(for p in $plugins; do cat /proc/"$p"/task/*/children 2>/dev/null; done | tr '\n' ' ' || true)
say "Crash: SIGKILL reprise and its plugin processes after $n succeeded nodes"
show kill -KILL "$pid" $plugins
wait "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do # let the steps in flight end on their own (10 s at most)
	alive=0
	for p in $steps; do kill -0 "$p" 2>/dev/null && alive=1; done
	[ "$alive" = 0 ] && break
	sleep 0.1
done

say "Where it stopped (the state file survived the kill)"
show "$REPRISE" status || true
node_states >before-resume.txt
grep -c ' succeeded$' before-resume.txt | sed 's/^/succeeded before the resume: /'
grep ' running$' before-resume.txt | sed 's/^/left running by the kill: /' || true

say "Resume: what had succeeded stays done"
rc=0
show "$REPRISE" resume --parallelism 8 || rc=$?
interrupted "$rc"
run=$("$REPRISE" runs --json | json_field id)
drive "$run" "$rc"

say "Proof: no step that had completed before the kill ran again"
fail=0
while read -r id state; do
	runs=$(grep -c "^$id " ledger || true)
	if [ "$state" = succeeded ] && [ "$runs" -gt 1 ]; then
		echo "RAN TWICE: $id had succeeded before the kill, yet the ledger has $runs runs:" >&2
		grep "^$id " ledger >&2
		fail=1
	elif [ "$state" != succeeded ] && [ "$runs" -gt 1 ]; then
		echo "  $id was $state at the kill: run again after the resume ($runs runs, allowed)"
	fi
done <before-resume.txt
before=$(grep -c ' succeeded$' before-resume.txt || true)
once=$(while read -r id state; do [ "$state" = succeeded ] && grep -q "^$id " ledger && echo "$id"; done <before-resume.txt | wc -l)
execs=$(grep -c 'plugin: exec' "$GRAPH")
distinct=$(cut -d' ' -f1 ledger | sort -u | wc -l)
echo "ledger: $(wc -l <ledger) step runs of $distinct distinct exec nodes (the graph has $execs);" \
	"$before nodes had succeeded before the kill, $once of them exec steps, each in the ledger exactly once"
if [ "$once" -eq 0 ] || [ "$distinct" -ne "$execs" ]; then
	echo "the ledger does not account for every exec step: the proof does not hold" >&2
	fail=1
fi

say "Summary"
show "$REPRISE" status "$run"
if [ "$fail" != 0 ] || [ "$rc" != 0 ] || ! check_all_succeeded "$run"; then
	echo "demo-resume: failed (resume exit $rc)" >&2
	exit 1
fi
echo "demo-resume: killed after $n nodes, resumed to the end with every node succeeded, no completed step run twice ($(( $(date +%s) - start ))s)"
