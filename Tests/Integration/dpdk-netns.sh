#!/usr/bin/env bash
# Integration test of the DPDK backend's other half (the arbiter on DPDK is
# arbiter-netns.sh with FP_IO=dpdk):
#   agent on DPDK   fastpass-agent --io dpdk in h1, on a net_af_packet device bound to h1's
#                   veth, against fastpass-arbiter on raw sockets in a and an agent on
#                   sockets in h2, all on one bridge. h1 sends 3000 UDP datagrams to h2
#                   through its agent: the agent must reach "scheduled" over DPDK (its
#                   ARP request for the arbiter answered, FCP both ways), release the
#                   datagrams in timeslots out of the DPDK port, and h2 must receive them
#                   (≥ 95 %); the arbiter must show h1 connected with allocations.
#   init failures   DPDK that cannot start must exit non-zero with a message naming the
#                   cause: bad EAL arguments, a device that does not exist, no port at
#                   all, too little memory, missing permissions (an unprivileged user).
#
# Needs root and a build with --traits DPDK. Without root: prints why and exits 0.
# Usage: Tests/Integration/dpdk-netns.sh [BIN_DIR]   (default .build/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-.build/release}")

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP dpdk-netns: needs root for network namespaces, raw sockets and DPDK"
  exit 0
fi

tag="fpdk$$"
work=$(mktemp -d)
namespaces=("${tag}sw" "${tag}a" "${tag}h1" "${tag}h2")
pids=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "${tag}v0" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
  echo "FAIL dpdk-netns: $*"
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -20 "$f"; }; done
  exit 1
}

eal='[-l, "0-1", --no-huge, --no-pci, --no-shconf, -m, "256", "--vdev=net_af_packet0,iface=eth0", --log-level=lib.eal:error]'

# ------------------------------------------------------------------ init failures
echo "== DPDK that cannot start says why"
cat >"$work/arbiter.yaml" <<YAML
listen: 10.89.0.1
metrics: 127.0.0.1:9464
log_level: info
topology:
  racks: 1
  spines: 1
  host_gbps: 1
  hosts:
    - {id: 1, address: 10.89.0.11, rack: 0}
    - {id: 2, address: 10.89.0.12, rack: 0}
YAML
# The same arbiter on DPDK, on a device that needs no privilege, for the failure cases.
{
  cat "$work/arbiter.yaml"
  echo "io: dpdk"
  echo "dpdk:"
  echo '  eal_args: [-l, "0-1", --no-huge, --no-pci, --no-shconf, -m, "256", --vdev=net_null0, --log-level=lib.eal:error]'
} >"$work/arbiter-dpdk.yaml"
expect_failure() { # name expected-text args...
  local name=$1 expected=$2 rc=0; shift 2
  timeout 20 "$@" >"$work/$name.out" 2>&1 || rc=$?
  if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then fail "$name: exit status $rc, expected a failure"; fi
  local message
  message=$(grep "^fastpass-arbiter: \|^Error: " "$work/$name.out" | tail -1)
  echo "  $name (exit $rc): $message"
  grep -q -- "$expected" <<<"$message" || fail "$name: the message does not say '$expected'"
}
arbiter=("$bin/fastpass-arbiter" --config "$work/arbiter-dpdk.yaml" --metrics none)
expect_failure bad-arguments "invalid EAL arguments" "${arbiter[@]}" --set "dpdk.eal_args=-l 0-1 --no-huge --no-shconf --bogus-option"
expect_failure no-device "failed to probe" "${arbiter[@]}" \
  --set "dpdk.eal_args=-l 0-1 --no-huge --no-pci --no-shconf -m 256 --vdev=net_af_packet0,iface=fpnosuch0"
expect_failure no-port "found no port" "${arbiter[@]}" --set "dpdk.eal_args=-l 0-1 --no-huge --no-pci --no-shconf -m 256"
expect_failure wrong-port "no DPDK port named 'net_tap9'" "${arbiter[@]}" --set dpdk.port=net_tap9
expect_failure too-little-memory "cannot create a pool" "${arbiter[@]}" \
  --set "dpdk.eal_args=-l 0-1 --no-huge --no-pci --no-shconf -m 8 --vdev=net_null0"
# An unprivileged user may not open the af_packet socket a net_af_packet device needs.
ip link add "${tag}v0" type veth peer name "${tag}v1"
chmod 755 "$work"  # the unprivileged user reads the configuration
if command -v setpriv >/dev/null; then
  expect_failure no-permission "missing permissions" setpriv --reuid=65534 --regid=65534 --clear-groups \
    "${arbiter[@]}" --set "dpdk.eal_args=-l 0-1 --no-huge --no-pci --no-shconf -m 256 --vdev=net_af_packet0,iface=${tag}v0"
else
  echo "  no-permission: skipped (setpriv missing)"
fi
ip link del "${tag}v0"

# ------------------------------------------------------------------ topology
echo "== agent on DPDK (h1), agent on sockets (h2), arbiter on sockets (a)"
ip netns add "${tag}sw"
ip -n "${tag}sw" link add br0 type bridge
ip -n "${tag}sw" link set br0 up
i=0
for pair in "a:10.89.0.1" "h1:10.89.0.11" "h2:10.89.0.12"; do
  name=${pair%%:*}; address=${pair#*:}; ns="${tag}${name}"; i=$((i + 1))
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip link add "${tag}p$i" type veth peer name "${tag}q$i"
  ip link set "${tag}p$i" netns "$ns"
  ip link set "${tag}q$i" netns "${tag}sw"
  ip -n "${tag}sw" link set "${tag}q$i" master br0 up
  ip -n "$ns" link set "${tag}p$i" name eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$address/24" dev eth0
done
# h1's kernel keeps its address (its applications send from it, replies arrive there)
# and sees the frames the af_packet device sees; the agent on DPDK opens no socket, so
# the FCP it handles can only have come from the port (checked below).
ip netns exec "${tag}a" "$bin/fastpass-arbiter" --config "$work/arbiter.yaml" >"$work/arbiter.log" 2>&1 &
pids+=("$!")
for h in h1 h2; do
  if [ $h = h1 ]; then self=10.89.0.11 id=1 peer=10.89.0.12 pid=2; else self=10.89.0.12 id=2 peer=10.89.0.11 pid=1; fi
  cat >"$work/agent-$h.yaml" <<YAML
arbiter: 10.89.0.1
address: $self
node: $id
interface: eth0
metrics: 127.0.0.1:9465
log_level: info
unreachable: {policy: hold, after_ms: 2000}
peers:
  - {id: $pid, address: $peer}
YAML
done
cat >>"$work/agent-h1.yaml" <<YAML
dpdk:
  eal_args: $eal
YAML
"$bin/fastpass-agent" --check-config "$work/agent-h1.yaml" >/dev/null || fail "agent configuration rejected"
sleep 0.5
ip netns exec "${tag}h1" "$bin/fastpass-agent" --config "$work/agent-h1.yaml" --io dpdk >"$work/agent-h1.log" 2>&1 &
pids+=("$!")
ip netns exec "${tag}h2" "$bin/fastpass-agent" --config "$work/agent-h2.yaml" >"$work/agent-h2.log" 2>&1 &
pids+=("$!")

cat >"$work/status.py" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/{sys.argv[2]}", timeout=2) as r:
    sys.stdout.write(r.read().decode())
PY
status() { timeout 5 ip netns exec "${tag}$1" python3 "$work/status.py" "$2" "$3" 2>/dev/null; }
for _ in $(seq 100); do
  s1=$(status h1 9465 status || true); s2=$(status h2 9465 status || true)
  [ -n "$s1" ] && [ -n "$s2" ] && ip -n "${tag}h1" link show fp0 >/dev/null 2>&1 && break
  sleep 0.2
done
[ -n "${s1:-}" ] || fail "the agent on DPDK did not come up"
grep -q "io=dpdk net_af_packet0" "$work/agent-h1.log" || fail "h1's agent is not on DPDK"

# ------------------------------------------------------------------ traffic h1 → h2
cat >"$work/udp.py" <<'PY'
import socket, sys, time
mode = sys.argv[1]
if mode == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.89.0.12", 9000)); s.settimeout(3)
    n = 0
    try:
        while True:
            s.recv(2000); n += 1
    except socket.timeout:
        pass
    print(n)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"x" * 1000
    for i in range(int(sys.argv[2])):
        s.sendto(payload, ("10.89.0.12", 9000))
        if i % 10 == 9: time.sleep(0.002)   # about 5 000 datagrams/s: well under 1 Gbit/s
    print(sys.argv[2])
PY
ip netns exec "${tag}h2" python3 "$work/udp.py" recv >"$work/received.txt" &
receiver=$!
sleep 0.3
ip netns exec "${tag}h1" python3 "$work/udp.py" send 3000 >/dev/null
wait $receiver
received=$(cat "$work/received.txt")
status h1 9465 status >"$work/h1.json" || fail "h1's agent does not answer"
status a 9464 endpoints >"$work/endpoints.json" || fail "the arbiter does not answer"

python3 - "$work" "$received" <<'PY' || fail "checks failed"
import json, sys
w, received = sys.argv[1], int(sys.argv[2])
h1 = json.load(open(f"{w}/h1.json"))
endpoints = {e["address"]: e for e in json.load(open(f"{w}/endpoints.json"))}
t = h1["transport"]
print(f"h1 (DPDK): state {h1['state']}, io {h1['io_backend']}, FCP received {h1['fcp_received']} sent {h1['fcp_sent']}, "
      f"released {h1['packets_released']}, unscheduled {h1['packets_unscheduled']}, egress {h1['egress_packets']} "
      f"(errors {h1['egress_errors']})")
print("h1 transport: " + ", ".join(f"{k} {v}" for k, v in sorted(t.items())))
e = endpoints.get("10.89.0.11", {})
print(f"arbiter: h1 connected {e.get('connected')}, allocations sent {e.get('allocations_sent')}; h2 received {received} of 3000")
ok = True
def check(c, what):
    global ok
    if not c: print("not so: " + what); ok = False
def at_least(value, threshold, what):
    # The figure and its margin to the threshold: a check that passes by a hair will flake.
    print(f"checked: {what} {value} >= {threshold} (margin {100 * (value - threshold) / threshold:+.1f} %)")
    check(value >= threshold, what)
check(h1["io_backend"] == "dpdk", "h1's agent uses DPDK")
check(h1["state"] == "scheduled", "h1 is scheduled")
check(h1["fcp_received"] > 0 and h1["fcp_sent"] > 0, "FCP flowed both ways through DPDK")
check(t["received"] == h1["fcp_received"], "every FCP packet h1 took came from the DPDK port")
check(t["arp_requests_sent"] >= 1, "h1 asked for the arbiter's MAC with ARP")
at_least(h1["packets_released"], 2850, "datagrams h1 released in timeslots (of 3000)")
check(h1["packets_unscheduled"] == 0 and h1["fallbacks"] == 0, "nothing went unscheduled")
at_least(h1["egress_packets"], 2850, "datagrams that left through the DPDK port (of 3000)")
check(e.get("connected") is True and e.get("allocations_sent", 0) > 0, "the arbiter serves h1")
at_least(received, 2850, "datagrams h2 received (of 3000)")
sys.exit(0 if ok else 1)
PY
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" || fail "a daemon exited non-zero after SIGTERM"; done
pids=()
grep -q "stopped" "$work/agent-h1.log" || fail "h1's agent did not stop cleanly"
echo "PASS dpdk-netns"
