# Shared by demo.sh and demo-resume.sh (sourced, not run).
# Folders and ports can be moved with HOSPITAL_WORK, HOSPITAL_BACKUPS and
# HOSPITAL_PORT_BASE (see README.md); the defaults live beside this file.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REPRISE="$ROOT/bin/reprise"
SIM="$ROOT/bin/hospital-sim"
GRAPH="$HERE/graph.yaml"
export HOSPITAL_WORK="${HOSPITAL_WORK:-$HERE/work}"
export HOSPITAL_BACKUPS="${HOSPITAL_BACKUPS:-$HERE/backups}"
export HOSPITAL_SEED="${HOSPITAL_SEED:-$HERE/seed}"
# The state file: the default ./reprise.db, in the work folder (we cd there).
unset REPRISE_STATE

if [ -t 1 ]; then BOLD=$'\033[1m'; DIM=$'\033[2m'; RESET=$'\033[0m'; else BOLD=; DIM=; RESET=; fi

# say TEXT: a section title.
say() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$RESET"; }
# show CMD…: print a command as a user would type it, then run it.
show() {
	local a line=
	for a in "$@"; do
		a=${a#"$ROOT/"}
		case "$a" in *[!A-Za-z0-9_./:=@%+,-]* | '') a="\"$a\"" ;; esac
		line+="$a "
	done
	printf '%s$ %s%s\n' "$DIM" "${line% }" "$RESET"
	"$@"
}

# stop_services: end every service recorded in work/pids, with its process
# group (each service leads its own session), then forget the pid files.
stop_services() {
	local f pid n=0
	for f in "$HOSPITAL_WORK"/pids/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null || true)
		case "$pid" in '' | *[!0-9]*) rm -f "$f"; continue ;; esac
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || return 0
	local i
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		local alive=0
		for f in "$HOSPITAL_WORK"/pids/*.pid; do
			[ -e "$f" ] || continue
			pid=$(cat "$f" 2>/dev/null || true)
			[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for f in "$HOSPITAL_WORK"/pids/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null || true)
		[ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
		rm -f "$f"
	done
	printf '%sstopped %d hospital services%s\n' "$DIM" "$n" "$RESET"
}

# prepare: check the binaries, build the simulator and the backups, and start
# from an empty work folder.
prepare() {
	local b
	for b in "$REPRISE" "$ROOT/bin/reprise-plugin-pacs"; do
		if [ ! -x "$b" ]; then
			echo "missing $b: run 'make build' first (make demo does)" >&2
			exit 1
		fi
	done
	say "Build the hospital simulator and the backups"
	(cd "$ROOT" && show go build -o bin/hospital-sim ./examples/hospital/cmd/hospital-sim)
	(cd "$ROOT" && show go run ./examples/hospital/cmd/mkbackups -seed "$HOSPITAL_SEED" -out "$HOSPITAL_BACKUPS" -points "$HERE/points")
	stop_services
	rm -rf "$HOSPITAL_WORK"
	mkdir -p "$HOSPITAL_WORK"
	"$SIM" ports | sed 's/^/  /'
}

# interrupted RC: after Ctrl-C reprise stops cleanly with exit 130; the
# script then ends too, and its EXIT trap stops the hospital's services (so
# run the demo again rather than resuming this run: its services are gone).
interrupted() {
	if [ "$1" = 130 ]; then
		echo "interrupted: the hospital's services are stopped; run the demo again to start over" >&2
		exit 130
	fi
}

# json_field KEY: the first string value of "KEY" in the JSON on stdin.
json_field() { tr -d '\n' | sed -n "s/^[^{]*{[^}]*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }

# check_all_succeeded RUN: exit status 0 when every node of RUN succeeded.
check_all_succeeded() {
	local json states
	states=$(node_states "$1" | cut -d' ' -f2 | sort | uniq -c)
	printf 'node states:\n%s\n' "$states"
	if printf '%s\n' "$states" | grep -qv ' succeeded$'; then
		return 1
	fi
	[ -n "$states" ]
}

# node_states [RUN]: "ID STATE" lines from `reprise status --json`.
node_states() {
	"$REPRISE" status ${1:+"$1"} --json | awk '
		/"nodes": *\[/ { in_nodes = 1 }
		in_nodes && /^  \]/ { exit }
		in_nodes && /"id":/ { gsub(/.*"id": *"|".*/, ""); id = $0 }
		in_nodes && /"state":/ && id != "" { gsub(/.*"state": *"|".*/, ""); print id, $0; id = "" }'
}

# succeeded_count [RUN]: how many nodes have succeeded (counts.succeeded).
succeeded_count() {
	"$REPRISE" status ${1:+"$1"} --json 2>/dev/null | grep -m 1 '"succeeded": *[0-9]' | tr -dc 0-9
}

# zone_to_certify RUN: the most trusted zone of RUN whose nodes are all done
# and that is not certified yet, if the zones before it are ("" if none).
zone_to_certify() {
	"$REPRISE" status "$1" --json | awk '
		/"zones": *\[/ { in_zones = 1; next }
		in_zones && /^  \]/ { exit }
		in_zones && /^      "id":/ { gsub(/.*"id": *"|".*/, ""); id = $0; cert = 0 }
		in_zones && /^      "total":/ { gsub(/[^0-9]/, ""); total = $0 }
		in_zones && /^      "done":/ { gsub(/[^0-9]/, ""); done = $0 }
		in_zones && /^      "certified":/ { cert = 1 }
		in_zones && /^      "open":/ { if (!cert && total == done && $0 ~ /true/) { print id; exit } }'
}

# certifier ZONE: who certifies each zone in the demo, and what they checked.
certifier() {
	case "$1" in
	core) echo "Marc Lenoir (RSSI)|AD rebuilt from the offline backup, krbtgt reset twice, tier 0 accounts reviewed, EDR clean on every core server, evidence of dc01 and ws-admin-01 archived" ;;
	clinical) echo "Dr Anne Roussel (head of medical IT)|clinical applications restored from scanned restore points, HL7 flows tested end to end, biologist's validation recorded" ;;
	administrative) echo "Paul Girard (finance director)|coding, billing and finance restored; PMSI catch-up checked against the re-entered stays" ;;
	*) echo "Marc Lenoir (RSSI)|outside links reopened flow by flow, firewall rules reviewed" ;;
	esac
}

# certify_ready RUN: certify, most trusted first, every zone ready for it.
certify_ready() {
	local z who
	while z=$(zone_to_certify "$1") && [ -n "$z" ]; do
		who=$(certifier "$z")
		show "$REPRISE" certify "$1" "$z" --by "${who%%|*}" --comment "${who#*|}"
	done
}

# drive RUN RC: from a run that stopped with exit RC, approve the
# biologist's gate and certify each zone as the run reaches it, resuming
# until the run ends; sets rc to the last exit code.
drive() {
	local run=$1 i
	rc=$2
	for i in 1 2 3 4 5 6 7 8; do
		[ "$rc" = 4 ] || break
		if "$REPRISE" status "$run" --json | tr -d '\n ' | grep -q '"waiting":\[[^]]*"lab-validation"'; then
			say "Parked on the biologist's validation: she approves"
			show "$REPRISE" approve "$run" lab-validation --by "Dr Claire Martin (biologist)" \
				--comment "analysers online, reference ranges checked, middleware results reviewed"
		fi
		if [ -n "$(zone_to_certify "$run")" ]; then
			say "A trust zone is rebuilt: it is certified before the next one starts"
			show "$REPRISE" status "$run" | sed -n '/^zones/,$p'
			certify_ready "$run"
		fi
		say "Resume"
		rc=0
		show "$REPRISE" resume "$run" || rc=$?
		interrupted "$rc"
	done
	certify_ready "$run" # the last zone, once the run is over
}
