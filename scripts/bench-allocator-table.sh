#!/usr/bin/env bash
# Runs the allocator benchmark over loads 0.1…0.99 at 256, 1024 and 4096 hosts (release
# build) and prints the markdown table docs/benchmarks.md holds. RUNS sets the timed runs
# per point (median reported; default 3). Takes about a quarter of an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
swift build -c release --product fastpass-bench >/dev/null
echo "| hosts | load | ns/allocation | ns/timeslot | utilization | Gbit/s per core | allocations in timed loop |"
echo "|---|---|---|---|---|---|---|"
for nodes in 256 1024 4096; do
    for load in 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 0.95 0.99; do
        .build/release/fastpass-bench allocator --nodes "$nodes" --load "$load" --runs "$runs" --json |
            python3 -c '
import json, sys
r = json.load(sys.stdin)
print("| %d | %s | %.2f | %.0f | %.4f | %.0f | %d |" % (r["nodes"], r["load"], r["ns_per_allocation"],
      r["ns_per_timeslot"], r["utilization"], r["gbps_per_core"], r["allocations_in_timed_loop"]))'
    done
done
