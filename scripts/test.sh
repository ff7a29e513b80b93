#!/usr/bin/env bash
# Runs every test suite, as CI does. Installs the system packages the tests need when
# they are missing (needs root for that), builds once, then runs:
#   1. the format check (swift format lint, configuration in .swift-format);
#   2. the Swift test suites (reference vectors, properties, robustness, extensions);
#   3. the allocation budgets (scripts/allocation-budgets.sh): the release benchmarks'
#      timed loops (codec, allocator inline and on threads, paths) must not allocate;
#   4. the namespace integration test: fastpass-arbiter (release build: a debug arbiter
#      cannot keep up with real time) and reference and extended FCP endpoints in network
#      namespaces, with bad input; needs root, skipped with the reason otherwise;
#   5. the agent end-to-end test: fastpass-arbiter and a fastpass-agent on each of five
#      hosts in namespaces, TCP through a 100 Mbit/s tbf, with and without agents, an
#      arbiter restart and crash cleanup (Tests/Integration/agent-netns.sh, ~60 s); needs
#      root, skipped with the reason otherwise;
#   6. the DPDK backend (everything is built with --traits DPDK, from Debian's libdpdk-dev):
#      the arbiter on DPDK (net_af_packet in its namespace) through the same namespace
#      test, an agent on DPDK against an arbiter on sockets, and DPDK start-up failures
#      (Tests/Integration/dpdk-netns.sh); needs root, skipped with the reason otherwise;
#   7. the FCP libFuzzer target for FUZZ_SECONDS (default 60; 0 skips it).
# Usage: scripts/test.sh            FUZZ_SECONDS=600 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3 iproute2 iperf3 iputils-ping ethtool libdpdk-dev libnuma-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

start=$(date +%s)
# Each stage's name, then its time when the next begins: what a change adds shows here.
stage_name=""
stage_start=$start
stage() {
  local now
  now=$(date +%s)
  [ -n "$stage_name" ] && echo "-- $stage_name: $((now - stage_start)) s"
  stage_name=$1
  stage_start=$now
  [ -n "$1" ] && echo "== $1"
  return 0
}
stage "swift format lint"
swift format lint --strict -r Sources Tests Fuzz
stage "swift build --build-tests --traits DPDK"
swift build --build-tests --traits DPDK
stage "swift test"
set +e
swift test --traits DPDK --skip-build > .build/test-output.log 2>&1
status=$?
set -e
grep -E "FCP reference vectors|skipped|^seed|connection config|✘|Test run with|error:" .build/test-output.log || true
if [ "$status" -ne 0 ] || grep -q "✘" .build/test-output.log; then
  tail -n 60 .build/test-output.log >&2
  echo "test: FAILED (status $status; full log: .build/test-output.log)" >&2
  exit 1
fi

stage "swift build -c release (the daemons, fastpassctl, fastpass-bench)"
for product in fastpass-arbiter fastpass-agent fastpass-bench fastpassctl; do
  swift build -c release --traits DPDK --product "$product" 2>&1 | tail -n 1
done
stage "allocation budgets: the benchmarks' timed loops allocate nothing"
scripts/allocation-budgets.sh .build/release
stage "integration: fastpass-arbiter in network namespaces"
timeout 300 Tests/Integration/arbiter-netns.sh .build/release
stage "integration: the same, allocator stages and path selection on threads of their own"
FP_ARBITER_FLAGS="--allocator-threads 2" timeout 300 Tests/Integration/arbiter-netns.sh .build/release
stage "integration: fastpass-agent end to end (100 Mbit/s tbf bottleneck, arbiter restart, crash cleanup)"
FP_DURATION=10 timeout 300 Tests/Integration/agent-netns.sh .build/release
stage "integration: the arbiter on DPDK (net_af_packet), endpoints on raw sockets"
FP_IO=dpdk timeout 300 Tests/Integration/arbiter-netns.sh .build/release
stage "integration: an agent on DPDK, the arbiter on sockets; DPDK start-up failures"
timeout 300 Tests/Integration/dpdk-netns.sh .build/release

fuzz="${FUZZ_SECONDS:-60}"
if [ "$fuzz" -gt 0 ]; then
  stage "fuzz ${fuzz}s"
  scripts/fuzz.sh "$fuzz"
fi
stage ""
echo "test: all passed in $(( $(date +%s) - start ))s"
