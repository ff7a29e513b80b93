#!/usr/bin/env bash
# Before/after benchmark comparison in paired rounds, for a refactor that must not be
# slower: each round runs every benchmark once with BEFORE's binaries and once with
# AFTER's, in alternating order (this machine is noisy and drifts), then prints per
# benchmark the median of after/before over the rounds (≤ 1.03 is "no slower").
# Release binaries: BEFORE_DIR and AFTER_DIR hold fastpass-bench (and fastpass-arbiter for
# fcp-load, which needs root and is skipped without it).
# Usage: scripts/bench-compare.sh BEFORE_DIR AFTER_DIR [ROUNDS (default 11)]
set -euo pipefail
before=$(realpath "$1")
after=$(realpath "$2")
rounds=${3:-11}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# name | fastpass-bench arguments | JSON path of the figure (lower is better)
benchmarks=(
  "codec encode|codec --runs 3 --packets 300000|encode_ns_per_packet"
  "codec receive|codec --runs 3 --packets 300000|receive_ns_per_packet"
  "allocator 256 hosts|allocator --nodes 256 --runs 3|ns_per_allocation"
  "allocator 1024 hosts|allocator --nodes 1024 --runs 3|ns_per_allocation"
  "paths|paths --runs 3 --slots 5000|ns_per_timeslot"
)
if [ "$(id -u)" -eq 0 ]; then
  benchmarks+=("fcp-load 16 endpoints|fcp-load --hosts 16 --destinations 2 --runs 1 --warmup 0.5 --duration 2 --accept-late 16|median.ownNanosecondsPerPacket")
fi

figure() { # json-file path
  python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(v)' "$1" "$2"
}

for r in $(seq 1 "$rounds"); do
  for b in "${benchmarks[@]}"; do
    IFS='|' read -r name args path <<<"$b"
    order=(before after)
    [ $((r % 2)) -eq 0 ] && order=(after before)
    for side in "${order[@]}"; do
      dir=$before
      [ "$side" = after ] && dir=$after
      extra=()
      [[ $args == fcp-load* ]] && extra=(--arbiter "$dir/fastpass-arbiter")
      # shellcheck disable=SC2086
      "$dir/fastpass-bench" $args "${extra[@]}" --json >"$out/run.json"
      echo "$name|$r|$side|$(figure "$out/run.json" "$path")" >>"$out/figures"
    done
  done
  echo "round $r of $rounds done"
done

python3 - "$out/figures" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    name, r, side, value = line.strip().split("|")
    runs[name].setdefault(r, {})[side] = float(value)
print(f"{'benchmark':24} {'before (median)':>16} {'after (median)':>15} {'after/before, median of pairs':>30}")
for name, pairs in runs.items():
    ratios = [p["after"] / p["before"] for p in pairs.values() if "after" in p and "before" in p and p["before"] > 0]
    b = statistics.median(p["before"] for p in pairs.values())
    a = statistics.median(p["after"] for p in pairs.values())
    print(f"{name:24} {b:16.2f} {a:15.2f} {statistics.median(ratios):30.3f}  ({len(ratios)} pairs)")
PY
