#!/usr/bin/env bash
# Builds the FCP libFuzzer target (Fuzz/FCPFuzzTarget.swift + Sources/Protocol, one module,
# with AddressSanitizer) and runs it for the given number of seconds (default 60).
#
#   scripts/fuzz.sh [seconds]          e.g. scripts/fuzz.sh 600
#
# Crashing inputs are written to .build-fuzz/artifacts/ and the run fails. The corpus
# lives in .build-fuzz/corpus/ (seeded from ../shared/fcp-vectors when present) and is
# kept between runs on this machine; nothing of it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
out=.build-fuzz
mkdir -p "$out/corpus" "$out/artifacts"
binary="$out/fcp-fuzz"

sources=(Sources/Protocol/*.swift Sources/Protocol/Extensions/*.swift Fuzz/FCPFuzzTarget.swift)
if [ ! -x "$binary" ] || [ -n "$(find "${sources[@]}" -newer "$binary" 2>/dev/null | head -n 1)" ]; then
  echo "fuzz: building $binary"
  swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name FastpassProtocol \
    -swift-version 6 "${sources[@]}" -o "$binary" 2>&1 | grep -v "Cannot export local symbol" || true
  [ -x "$binary" ] || { echo "fuzz: build failed" >&2; exit 1; }
fi

# Seed inputs: every packet of the reference vectors, wrapped in the target's framing
# (mode byte, then length-prefixed packets), for each configuration.
vectors="${FCP_VECTORS_DIR:-../shared/fcp-vectors}"
if [ -f "$vectors/decode.json" ] && [ ! -f "$out/corpus/.seeded" ]; then
  python3 - "$vectors" "$out/corpus" <<'PY'
import json, sys, os, hashlib
vectors, corpus = sys.argv[1], sys.argv[2]
packets = []
for case in json.load(open(os.path.join(vectors, "encode.json")))["cases"]:
    if case.get("bytes"): packets.append(bytes.fromhex(case["bytes"]))
for scenario in json.load(open(os.path.join(vectors, "decode.json")))["scenarios"]:
    for step in scenario["steps"]:
        if step.get("bytes"): packets.append(bytes.fromhex(step["bytes"]))
for i in range(0, len(packets), 4):
    chunk = [p[:255] for p in packets[i:i + 4]]
    for mode in (0, 1, 5, 2, 3):
        data = bytes([mode]) + b"".join(bytes([len(p)]) + p for p in chunk)
        name = hashlib.sha1(data).hexdigest()
        open(os.path.join(corpus, name), "wb").write(data)
PY
  touch "$out/corpus/.seeded"
fi

echo "fuzz: running for ${seconds}s"
"$binary" "$out/corpus" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -artifact_prefix="$out/artifacts/" -print_final_stats=1 2>&1 | tee "$out/last-run.log" | grep -E "^#|Done|ERROR|SUMMARY|stat::" | tail -n 12
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "fuzz: FAILED (status $status); see $out/last-run.log and $out/artifacts/" >&2
  exit "$status"
fi
echo "fuzz: no crash in ${seconds}s"
