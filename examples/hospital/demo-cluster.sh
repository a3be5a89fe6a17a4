#!/usr/bin/env bash
# make demo-cluster: rebuild the reference hospital (examples/hospital/graph.yaml)
# with reprise scaled out on this machine, and break it on the way:
#
#   1. start a 3-member etcd cluster (bin/etcd, built from the etcd server
#      module this repository pins), each member with its own ports and data;
#   2. start three agents, one per trust zone (core, clinical, administrative):
#      each takes its zone's steps through etcd; the outside world's nodes,
#      whose zone has no agent, run in the coordinator;
#   3. start two coordinators on the same graph: the first leads the run, the
#      second waits with --standby;
#   4. drive the run as the crisis cell would (certify each zone, the
#      biologist approves her gate — through etcd, to whichever coordinator
#      leads) and, part-way, SIGKILL the clinical agent (a new one is started
#      in its place), SIGKILL the leading coordinator (the standby takes over)
#      and stop one etcd member for good (two of three keep the quorum);
#   5. end with every node succeeded, the journal verified, and the ledger
#      (every exec step appends "NODE ATTEMPT" when it acts) proving that no
#      step that had completed before a kill ran again; print what happened
#      when.
#
# Ports: etcd on ETCD_PORT_BASE..+5 (default 23790); the hospital's services
# as in `make demo`. Everything started here is stopped on the way out.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ETCD="$ROOT/bin/etcd"
ETCD_PORT_BASE=${ETCD_PORT_BASE:-23790}
TTL=${CLUSTER_TTL:-5s}
CW="$HOSPITAL_WORK/cluster" # set up after prepare, which empties the work folder
declare -A PID=()
T0=$(date +%s.%N)

# at TEXT: note an event with the seconds since the start, for the summary.
at() {
	local t
	t=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%7.1f", b - a }')
	printf '%s%s s  %s%s\n' "$BOLD" "$t" "$*" "$RESET"
	printf '%s s  %s\n' "$t" "$*" >>"$CW/events.txt"
}

# since_kill T LOG: how long after T (seconds since the epoch: the leader's
# SIGKILL) the standby writing LOG took over, from the local time it logs
# ("took over … at 15:04:05.000"); the standby's own "waited" counts from
# its start.
since_kill() {
	local hms at
	hms=$(grep -o 'took over the lead of graph .* at [0-9:.]*' "$2" | head -n 1 | awk '{print $NF}')
	at=$(date -d "$hms" +%s.%N 2>/dev/null) || { echo "time since the SIGKILL unknown"; return; }
	awk -v a="$1" -v b="$at" -v ttl="$TTL" 'BEGIN { d = b - a; if (d < -43200) d += 86400
		printf "%.1f s after the SIGKILL (target: the lease, %s, + 2 s)", d, ttl }'
}

# spawn NAME CMD…: start a process of the demo in its own session, logging
# to cluster/NAME.log.
spawn() {
	local name=$1
	shift
	setsid "$@" >"$CW/$name.log" 2>&1 </dev/null &
	PID[$name]=$!
}

alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }

stop_all() {
	local name
	for name in "${!PID[@]}"; do
		kill -TERM -- "-${PID[$name]}" 2>/dev/null || true
	done
	sleep 1
	for name in "${!PID[@]}"; do
		kill -KILL -- "-${PID[$name]}" 2>/dev/null || true
	done
	stop_services
}
trap stop_all EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

for b in "$ETCD" "$REPRISE"; do
	if [ ! -x "$b" ]; then
		echo "missing $b: run 'make demo-cluster' (it builds bin/etcd and bin/reprise)" >&2
		exit 1
	fi
done

prepare
mkdir -p "$CW"
: >"$CW/events.txt"
cd "$HOSPITAL_WORK"

say "Start a 3-member etcd cluster"
peers= clients=
for i in 0 1 2; do
	peers+="${peers:+,}m$i=http://127.0.0.1:$((ETCD_PORT_BASE + 2 * i + 1))"
	clients+="${clients:+,}127.0.0.1:$((ETCD_PORT_BASE + 2 * i))"
done
for i in 0 1 2; do
	c=$((ETCD_PORT_BASE + 2 * i)) p=$((ETCD_PORT_BASE + 2 * i + 1))
	spawn "etcd-m$i" "$ETCD" --name "m$i" --data-dir "$CW/etcd-m$i" \
		--listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
		--listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
		--initial-cluster "$peers" --initial-cluster-token reprise-demo --initial-cluster-state new \
		--log-level error
	printf '%s  etcd member m%d: clients 127.0.0.1:%d, peers 127.0.0.1:%d%s\n' "$DIM" "$i" "$c" "$p" "$RESET"
done
export REPRISE_STATE="etcd://$clients/chsf"
for i in $(seq 1 100); do
	"$REPRISE" runs >/dev/null 2>&1 && break
	[ "$i" = 100 ] && { echo "etcd did not answer in 20 s; see $CW/etcd-m*.log" >&2; exit 1; }
	sleep 0.2
done
at "etcd cluster up (3 members); state: $REPRISE_STATE"

say "Start one agent per trust zone (the outside world's nodes run in the coordinator)"
for z in core clinical administrative; do
	spawn "agent-$z-1" "$REPRISE" agent --zone "$z" --name "$z-1" --slots 4 --ttl "$TTL"
	printf '%s$ bin/reprise agent --zone %s --name %s-1 --slots 4 --ttl %s%s\n' "$DIM" "$z" "$z" "$TTL" "$RESET"
done
at "agents core-1, clinical-1, administrative-1 started"

say "Start two coordinators: one leads the run, the other stands by"
# coordinators ARGS…: start a leader and a standby (reprise run GRAPH or
# reprise resume RUN); LEADER and STANDBY name them.
pair=0 LEADER= STANDBY=
coordinators() {
	pair=$((pair + 1))
	LEADER="coord-$pair-a" STANDBY="coord-$pair-b"
	spawn "$LEADER" "$REPRISE" "$@" --wait --parallelism 8 --ttl "$TTL" -q
	printf '%s$ bin/reprise %s --wait --parallelism 8 --ttl %s -q%s\n' "$DIM" "${*#"$ROOT/"}" "$TTL" "$RESET"
	sleep 1
	spawn "$STANDBY" "$REPRISE" "$@" --wait --parallelism 8 --ttl "$TTL" -q --standby
	printf '%s$ bin/reprise %s --wait --parallelism 8 --ttl %s -q --standby%s\n' "$DIM" "${*#"$ROOT/"}" "$TTL" "$RESET"
}
coordinators run "$GRAPH"
run=
for i in $(seq 1 150); do
	run=$("$REPRISE" runs --json 2>/dev/null | json_field id || true)
	[ -n "$run" ] && break
	alive "$LEADER" || { echo "the coordinator ended before its run began:" >&2; cat "$CW/$LEADER.log" >&2; exit 1; }
	sleep 0.2
done
[ -n "$run" ] || { echo "no run after 30 s; see $CW/$LEADER.log" >&2; exit 1; }
at "coordinator $LEADER leads run $run; $STANDBY stands by"

# snapshot NAME: the node states now and how long the ledger is, for the
# proof at the end: a node done at that moment must not act after it.
snapshot() {
	node_states "$run" >"$CW/before-$1.txt" 2>/dev/null || true
	wc -l <ledger >"$CW/before-$1.ledger" 2>/dev/null || echo 0 >"$CW/before-$1.ledger"
}

say "Drive the run as the crisis cell, and break things part-way"
killed_agent= killed_leader= stopped_member= approved= core_certified= deadline=$(($(date +%s) + ${CLUSTER_DEMO_LIMIT:-900}))
status=running
while :; do
	# Read from files, not pipes that a reader may close early (SIGPIPE
	# under pipefail would end the script).
	"$REPRISE" status "$run" --json >"$CW/status.json" 2>/dev/null || true
	status=$(json_field status <"$CW/status.json" || true)
	case "$status" in succeeded | failed | cancelled) break ;; esac
	done_n=$(grep -m 1 '"succeeded": *[0-9]' "$CW/status.json" | tr -dc 0-9 || true)
	done_n=${done_n:-0}
	tr -d '\n ' <"$CW/status.json" >"$CW/status.flat" || true
	if [ -z "$approved" ] && grep -q '"waiting":\[[^]]*"lab-validation"' "$CW/status.flat"; then
		show "$REPRISE" approve "$run" lab-validation --by "Dr Claire Martin (biologist)" \
			--comment "analysers online, reference ranges checked, middleware results reviewed" && approved=1
		at "lab-validation approved through etcd by Dr Claire Martin"
	fi
	while z=$(zone_to_certify "$run") && [ -n "$z" ]; do
		who=$(certifier "$z")
		show "$REPRISE" certify "$run" "$z" --by "${who%%|*}" --comment "${who#*|}" || break
		at "zone $z certified by ${who%%|*}"
		[ "$z" = core ] && core_certified=1
	done
	# The faults, one after the other, each while the run is going on in the
	# clinical zone (the largest): the zone's agent, then the leader, then an
	# etcd member once the standby leads.
	if [ "$status" = running ] && [ -n "$core_certified" ]; then
		if [ -z "$killed_agent" ]; then
			snapshot agent
			kill -KILL -- "-${PID[agent-clinical-1]}"
			killed_agent=1
			at "SIGKILL agent clinical-1 ($done_n nodes succeeded): its steps go to the next agent of the zone once its lease ($TTL) expires"
			spawn agent-clinical-2 "$REPRISE" agent --zone clinical --name clinical-2 --slots 4 --ttl "$TTL"
			at "agent clinical-2 started in its place"
		elif [ -z "$killed_leader" ] && alive "$LEADER" && alive "$STANDBY"; then
			snapshot leader
			kill -KILL -- "-${PID[$LEADER]}"
			killed_leader=$STANDBY killed_leader_at=$(date +%s.%N)
			at "SIGKILL $LEADER, the leading coordinator ($done_n nodes succeeded): $STANDBY takes over within the lease ($TTL) + 2 s"
		elif [ -n "$killed_leader" ] && [ -z "$stopped_member" ] && grep -q "took over" "$CW/$killed_leader.log"; then
			at "$killed_leader $(grep -o 'took over.*' "$CW/$killed_leader.log" | head -n 1), $(since_kill "$killed_leader_at" "$CW/$killed_leader.log")"
			snapshot member
			kill -KILL -- "-${PID[etcd-m2]}"
			stopped_member=1
			at "SIGKILL etcd member m2 ($done_n nodes succeeded): m0 and m1 keep the quorum"
		fi
	fi
	if ! alive "$LEADER" && ! alive "$STANDBY"; then
		# Both ended: the run ended since the status above was read (read it
		# again), parked (a gate no coordinator waits at) or was interrupted.
		# Gates were handled above: resume it, with a standby.
		"$REPRISE" status "$run" --json >"$CW/status.json" 2>/dev/null || true
		status=$(json_field status <"$CW/status.json" || true)
		case "$status" in succeeded | failed | cancelled) break ;; esac
		at "coordinators ended with the run $status: resume it"
		coordinators resume "$run"
	fi
	if [ "$(date +%s)" -gt "$deadline" ]; then
		echo "the run did not end within ${CLUSTER_DEMO_LIMIT:-900} s" >&2
		break
	fi
	sleep 1
done
# The last zone is certified once the run is over.
while z=$(zone_to_certify "$run") && [ -n "$z" ]; do
	who=$(certifier "$z")
	show "$REPRISE" certify "$run" "$z" --by "${who%%|*}" --comment "${who#*|}" || break
	at "zone $z certified by ${who%%|*}"
done
at "run $run ended: $status"

say "Summary"
show "$REPRISE" status "$run" || true
printf '%s$ bin/reprise log %s | grep -E "agent|lost|refused|coordinator|leader|certified"%s\n' "$DIM" "$run" "$RESET"
"$REPRISE" log "$run" | grep -E "agent|lost|refused|coordinator|leader|certified" | tail -n 40 || true
show "$REPRISE" log "$run" --verify

say "Proof: no step that had completed before a kill ran again"
fail=0
for f in "$CW"/before-*.txt; do
	[ -e "$f" ] || continue
	kill=${f##*/before-}
	kill=${kill%.txt}
	lines=$(cat "${f%.txt}.ledger")
	after=$(tail -n "+$((lines + 1))" ledger)
	n=$(grep -c ' succeeded$' "$f" || true)
	while read -r id state; do
		[ "$state" = succeeded ] || continue
		if printf '%s\n' "$after" | grep -q "^$id "; then
			echo "RAN AGAIN: $id had succeeded before the $kill kill, yet acted after it:" >&2
			grep -n "^$id " ledger >&2
			fail=1
		fi
	done <"$f"
	echo "$kill kill: $n nodes had succeeded; none of them acted again ($(printf '%s' "$after" | grep -c . || true) step runs after it)"
done
twice=$(cut -d' ' -f1 ledger | sort | uniq -d)
if [ -n "$twice" ]; then
	echo "acted more than once (a retry, or in flight at a kill: Check first, then Restore): $(echo $twice)"
fi
execs=$(grep -c 'plugin: exec' "$GRAPH")
distinct=$(cut -d' ' -f1 ledger | sort -u | wc -l)
echo "ledger: $(wc -l <ledger) step runs of $distinct distinct exec nodes (the graph has $execs)"
[ "$distinct" -eq "$execs" ] || { echo "the ledger does not account for every exec step" >&2; fail=1; }

say "What happened when"
cat "$CW/events.txt"

if [ "$status" != succeeded ] || ! check_all_succeeded "$run"; then
	echo "demo-cluster: the rebuild did not end with every node succeeded (status $status)" >&2
	exit 1
fi
if [ -z "$stopped_member" ]; then
	echo "demo-cluster: the run ended before every fault was injected" >&2
	exit 1
fi
[ "$fail" = 0 ] || exit 1
echo "demo-cluster: every node succeeded through an agent kill, a leader kill and a lost etcd member; the journal verifies; no completed step ran twice"
