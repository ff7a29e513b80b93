#!/usr/bin/env bash
# Guards the hot paths' allocation budget: runs the release benchmarks whose timed loops
# must not allocate (the FCP codec, the timeslot allocator inline and on threads, path
# selection), each briefly, and fails if any counted an allocation in its timed loop or if
# the allocation counter itself does not count (its self-check allocates 100 arrays).
# Timing figures are printed, never checked: they belong in docs/benchmarks.md.
# Usage: scripts/allocation-budgets.sh [BIN_DIR]   (default .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-.build/release}")
[ -x "$bin/fastpass-bench" ] || { echo "FAIL allocation-budgets: no $bin/fastpass-bench (build it in release mode)"; exit 1; }

run() { # name, then the benchmark's arguments
  local name=$1; shift
  local out
  out=$("$bin/fastpass-bench" "$@" --json) || { echo "FAIL allocation-budgets: $name: fastpass-bench $* failed"; exit 1; }
  python3 - "$name" "$out" <<'PY' || exit 1
import json, sys
name, o = sys.argv[1], json.loads(sys.argv[2])
counts = {k: v for k, v in o.items() if k.endswith("_allocations") or k == "allocations_in_timed_loop"}
check = o.get("allocation_counter_self_check", 0)
bad = {k: v for k, v in counts.items() if v != 0}
print(f"{name}: allocations in timed loops {counts}; counter self-check {check} (≥ 100)")
if check < 100:
    print(f"FAIL allocation-budgets: {name}: the allocation counter counted {check} of 100 deliberate allocations"); sys.exit(1)
if not counts:
    print(f"FAIL allocation-budgets: {name}: the benchmark reported no allocation counts"); sys.exit(1)
if bad:
    print(f"FAIL allocation-budgets: {name}: allocated in a timed loop: {bad}"); sys.exit(1)
PY
}

run "codec" codec --runs 1 --packets 100000
run "allocator, inline" allocator --runs 1 --slots 50048 --warmup-slots 2048
run "allocator, 2 stages on threads" allocator --cores 2 --runs 1 --slots 50048 --warmup-slots 2048
run "paths" paths --runs 1 --slots 2000 --warmup-slots 2048
echo "PASS allocation-budgets"
