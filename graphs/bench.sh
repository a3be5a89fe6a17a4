#!/usr/bin/env bash
# bench.sh — the speed and memory figures of graphs/BENCH.md, measured on
# the built binary: validate and plan of a 10,000-node YAML graph and of a
# 100,000-node (~200,000-edge) JSON graph, plus 150,000 nodes for the size
# limit. Each command runs RUNS times (default 5); the medians of wall
# time, user and system CPU and peak RSS are printed, with the load average,
# since other work on the machine inflates wall times. RT=1 runs each
# command under real-time scheduling (chrt -f 50, needs root) so that other
# processes on a busy machine do not take the CPU from it: the wall times
# are then those of an idle machine.
# Usage: graphs/bench.sh   (from the repository root; needs /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
prefix=()
if [ "${RT:-0}" = 1 ]; then prefix=(chrt -f 50); fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/reprise" ./cmd/reprise
go build -o "$dir/graphgen" ./cmd/graphgen
"$dir/graphgen" -nodes 10000 -edges 20000 -format yaml -o "$dir/g10k.yaml" 2>/dev/null
"$dir/graphgen" -nodes 100000 -edges 200000 -format json -o "$dir/g100k.json" 2>/dev/null
"$dir/graphgen" -nodes 150000 -edges 300000 -format json -o "$dir/g150k.json" 2>/dev/null
printf '%-32s %8s %8s %8s %9s   %s\n' command wall_s user_s sys_s rss_MB load
for spec in "validate g10k.yaml" "plan g10k.yaml" "validate g100k.json" "plan g100k.json" \
            "plan --json g100k.json" "plan g150k.json"; do
  set -- $spec
  file="${!#}"
  args=("${@:1:$#-1}")
  out="$dir/times"
  : > "$out"
  for _ in $(seq "$RUNS"); do
    "${prefix[@]}" /usr/bin/time -f '%e %U %S %M' -a -o "$out" "$dir/reprise" "${args[@]}" "$dir/$file" >/dev/null
  done
  med() { sort -n -k"$1" "$out" | awk -v c="$1" -v n="$RUNS" 'NR==int((n+1)/2) {print $c}'; }
  printf '%-32s %8s %8s %8s %9.0f   %s\n' "$spec" "$(med 1)" "$(med 2)" "$(med 3)" "$(( $(med 4) / 1024 ))" "$(cut -d' ' -f1 /proc/loadavg)"
done
