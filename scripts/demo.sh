#!/usr/bin/env bash
# The demo. Builds the release binaries and shows what exists so far:
#   - the FCP codec benchmark (encode/decode of the largest ALLOC packet, allocation-free);
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
echo "The simulated-fabric demo (fastpass-sim demo) is not built yet: see docs/ and the issue list."
