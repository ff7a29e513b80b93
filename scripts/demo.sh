#!/usr/bin/env bash
# The demo. Builds the release binaries, then:
#   - `fastpass-sim demo`: a simulated leaf–spine fabric (64 hosts in 4 racks, 4 spines,
#     10 Gbit/s) with web-search traffic at 60 % load, 20 ms simulated, run once with the
#     real arbiter and agent cores exchanging FCP across the fabric and once with a
#     DCTCP-like baseline; prints the comparison and writes fastpass-demo.json;
#   - the per-core benchmarks: FCP codec, timeslot allocator (256 hosts at 90 % load, one
#     core and two) and path selection (1024 hosts, 8 spines).
set -euo pipefail
cd "$(dirname "$0")/.."

# The demo needs no DPDK; where it is installed (as scripts/test.sh installs it), build with
# it as the tests do, so the two share one build instead of each rebuilding the other's.
traits=()
if dpkg -s libdpdk-dev >/dev/null 2>&1 && dpkg -s libnuma-dev >/dev/null 2>&1; then traits=(--traits DPDK); fi
echo "== building (release${traits[*]:+, DPDK backend included})"
swift build -c release "${traits[@]}" --product fastpass-sim
swift build -c release "${traits[@]}" --product fastpass-bench
echo
.build/release/fastpass-sim demo --json fastpass-demo.json
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
