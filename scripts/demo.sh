#!/usr/bin/env bash
# The demo. Builds the release binaries and shows what exists so far:
#   - the FCP codec benchmark (encode/decode of the largest ALLOC packet, allocation-free);
#   - the timeslot allocator on the reference workload (256 hosts at 90 % load), on one core
#     and pipelined over two;
#   - path selection on a 1024-host leaf–spine fabric (32 racks, 8 spines).
# The simulated Clos fabric demo (`fastpass-sim demo`: 64 hosts, web-search traffic at
# 60 % load, arbiter against a DCTCP-like baseline) replaces this once it exists.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building (release)"
swift build -c release --product fastpass-bench
echo
echo "== FCP codec: the largest reference ALLOC packet, encoded and decoded"
.build/release/fastpass-bench codec --runs 5 --packets 500000
echo
echo "== timeslot allocator: 256 hosts, Poisson requests of 10 slots on average, load 0.9"
.build/release/fastpass-bench allocator --nodes 256 --load 0.9 --runs 3
echo
echo "== the same, pipelined over two cores"
.build/release/fastpass-bench allocator --nodes 256 --load 0.9 --runs 3 --cores 2
echo
echo "== path selection: 32 racks of 32 hosts, 8 spines, load 0.9"
.build/release/fastpass-bench paths --runs 3
echo
echo "The simulated-fabric demo (fastpass-sim demo) is not built yet: see docs/ and the issue list."
