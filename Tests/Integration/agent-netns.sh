#!/usr/bin/env bash
# Integration test: fastpass-agent end to end. Four senders (h1..h4) and one receiver (r)
# on one bridge, the bridge port towards the receiver rate-limited to 100 Mbit/s by a tbf
# with a burst of about two packets and a 2 MB buffer: the only bottleneck. Four iperf3
# TCP flows (h1..h4 → r) run for FP_DURATION seconds while the tbf's backlog is sampled
# every ~10 ms and h1 pings r every 10 ms, twice:
#   no-agents  plain TCP: the backlog must build up (p99 ≥ 30 packets), showing the
#              bottleneck is real;
#   agents     fastpass-arbiter and a fastpass-agent on every host (TUN fp0, routing
#              table 222): backlog p99 ≤ 3 packets at ≥ 85 % goodput, and every sender's
#              agent released packets. The timeslot is 1600 bytes at 100 Mbit/s (128 µs),
#              not one 1538-byte frame: the FCP the arbiter sends to r crosses the tbf
#              unscheduled and needs the ~4 % this leaves. Agents may release a slot up
#              to 2 slots late (late_release_limit_ns 256000): on two loaded vCPUs their
#              pacing threads wake up to ~260 µs late, and a 1-slot limit loses a
#              quarter of the goodput to missed slots.
# Then, with the agents running:
#   arbiter restart  kill -9 of the arbiter 4 s into a 16 s h1+h2 transfer, started again at
#                    7 s: h1 and h2 fall back to unscheduled sending while it is gone; the
#                    flows must be back above 10 Mbit/s in the last 3 s, and h1, h2 and r
#                    must have a new welcome (reset handshake), be "scheduled" again and
#                    release packets in timeslots after the restart;
#   crash cleanup    kill -9 of h1's agent leaves its rule (priority 1000) but not fp0;
#                    `fastpass-agent --cleanup` removes it; an agent started over another's
#                    leftovers cleans them up itself; SIGTERM to every agent leaves no fp0,
#                    no rule at priority 1000 and an empty table 222 in any namespace.
# Prints one row per mode (backlog p99/max in packets, goodput, ping RTT p50/p99) and
# writes them to $FP_RESULTS when set. Installs iperf3, ping and ethtool with apt-get when
# missing. Takes about 60 s (FP_DURATION=10).
#
# Needs root (namespaces, TUN, raw sockets). Without it: prints why and exits 0 (skipped).
# Usage: Tests/Integration/agent-netns.sh [BIN_DIR]   (default .build/release)
#   FP_DURATION=10   seconds per measured mode
#   FP_RESULTS=FILE  also write the result rows there
#   FP_CC=cubic      the iperf3 flows' TCP congestion control (iperf3 -C; root may pick one
#                    outside net.ipv4.tcp_allowed_congestion_control). Without it they would
#                    use the machine's default, e.g. bbr, which keeps the baseline queue shorter.
#   FP_KEEP=DIR      on failure, copy the work directory (logs, samples, JSON) there
#   FP_SLOT_BYTES=1600, FP_LEAD_NS=30000, FP_LATE_NS=256000   the arbiter's slot_bytes and
#                    the agents' release_lead_ns and late_release_limit_ns
# Without BIN_DIR/fastpass-agent it measures the no-agents row, then fails saying so.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-.build/release}")
duration=${FP_DURATION:-10}
congestion=${FP_CC:-cubic}

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP agent-netns: needs root for network namespaces, TUN devices and raw sockets"
  exit 0
fi
if ! ip netns list >/dev/null 2>&1; then
  echo "SKIP agent-netns: 'ip netns' does not work here"
  exit 0
fi
if ! [[ "$duration" =~ ^[0-9]+$ ]] || [ "$duration" -lt 4 ]; then
  echo "FAIL agent-netns: FP_DURATION must be a whole number of seconds ≥ 4 (is '$duration')"
  exit 1
fi
[ -x "$bin/fastpass-arbiter" ] || { echo "FAIL agent-netns: no $bin/fastpass-arbiter (build it in release mode)"; exit 1; }

missing=()
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v ethtool >/dev/null || missing+=(ethtool)
if [ ${#missing[@]} -gt 0 ]; then
  echo "agent-netns: installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 || true
fi
command -v iperf3 >/dev/null && command -v ping >/dev/null \
  || { echo "FAIL agent-netns: needs iperf3 and ping (apt-get install iperf3 iputils-ping failed)"; exit 1; }

tag="fpag$$"
work=$(mktemp -d)
sw="${tag}sw"
hosts=(h1 h2 h3 h4 r)
senders=(h1 h2 h3 h4)
namespaces=("$sw" "${tag}a")
for h in "${hosts[@]}"; do namespaces+=("${tag}$h"); done
declare -A address=([a]=10.77.0.1 [h1]=10.77.0.11 [h2]=10.77.0.12 [h3]=10.77.0.13 [h4]=10.77.0.14 [r]=10.77.0.20)
declare -A node=([h1]=1 [h2]=2 [h3]=3 [h4]=4 [r]=5)
declare -A agent_pid=()
receiver=${address[r]}
pids=()          # every process this script started, killed on exit
arbiter_pid=""
rows=()
header=$(printf "%-11s %16s %16s %12s %11s %10s %10s %7s" mode backlog_p99_pkts backlog_max_pkts goodput_mbit goodput_pct rtt_p50_ms rtt_p99_ms samples)

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  # Anything else still running in this run's namespaces was started from here too.
  for ns in "${namespaces[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  wait 2>/dev/null
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

fail() {
  [ -n "${FP_KEEP:-}" ] && cp -r "$work" "$FP_KEEP"
  echo "FAIL agent-netns: $*"
  if [ ${#rows[@]} -gt 0 ]; then echo "$header"; printf '%s\n' "${rows[@]}"; fi
  for f in "$work"/arbiter.log "$work"/agent-*.log "$work"/*/client*.err "$work"/*/sampler.err; do
    [ -s "$f" ] || continue
    echo "--- ${f#"$work"/} (last 30 lines)"; tail -n 30 "$f"
  done
  client_errors "$work"/*/client-*.json
  exit 1
}
client_errors() { # iperf3 -J puts its errors in the JSON
  local f e
  for f in "$@"; do
    [ -s "$f" ] || continue
    e=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("error", ""))' "$f" 2>/dev/null) || e="(not JSON)"
    [ -z "$e" ] || echo "--- ${f#"$work"/}: $e"
  done
}

# Runs "$@" in namespace $1 in the background, output to $2; the pid is in $last_pid.
spawn() {
  local ns=$1 log=$2; shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

# Waits up to $2 seconds for process $1 to exit; returns its status, 124 if still running.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2)) status=0
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -ge "$deadline" ] && return 124
    sleep 0.1
  done
  wait "$pid" || status=$?
  return $status
}

# ---------------------------------------------------------------- helper programs
# Samples the tbf every ~10 ms: "seconds-since-start backlog-bytes backlog-packets" per line.
# One long-lived `tc -s -j -batch -` answers each "qdisc show" with one line of JSON (tc
# flushes after every batch command); a tc started per sample would cost ~45 % of a CPU.
cat >"$work/sampler.py" <<'PY'
import json, resource, select, subprocess, sys, time
dev, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
period = 0.01
command = f"qdisc show dev {dev}\n"
tc = subprocess.Popen(["tc", "-s", "-j", "-batch", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def poll():
    global tc
    if tc is not None:
        tc.stdin.write(command); tc.stdin.flush()
        if select.select([tc.stdout], [], [], 1.0)[0]:
            line = tc.stdout.readline()
            if line:
                return json.loads(line)
        print("sampler: tc -batch stopped answering, starting tc per sample", file=sys.stderr)
        tc.kill(); tc = None
    r = subprocess.run(["tc", "-s", "-j", "qdisc", "show", "dev", dev], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else []
def root(stats):
    return next((q for q in stats if q.get("root")), None)
first = root(poll())
start = time.monotonic()
n = polls = 0
with open(out, "w") as f:
    while True:
        now = time.monotonic() - start
        if now >= seconds:
            break
        q = root(poll())
        if q is not None:
            f.write(f"{now:.4f} {q['backlog']} {q['qlen']}\n")
        polls += 1
        n += 1
        delay = start + n * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -period:        # fell behind: do not try to catch up
            n = int((time.monotonic() - start) / period)
last = root(poll())
if tc is not None:
    tc.stdin.close(); tc.wait(timeout=5)
if first and last:
    sent, size, drops = (last[k] - first[k] for k in ("packets", "bytes", "drops"))
    print(f"tbf: {sent} packets sent ({size / max(sent, 1):.0f} bytes each on average), {drops} dropped", file=sys.stderr)
wall = time.monotonic() - start
cpu = sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
          for a in ("ru_utime", "ru_stime"))
print(f"sampler: {polls} polls in {wall:.1f} s, {cpu:.2f} s CPU with tc ({100 * cpu / wall:.0f} % of one CPU)", file=sys.stderr)
PY

# The row of one mode from its measurement directory: backlog (after slow start), goodput, RTT.
cat >"$work/analyze.py" <<'PY'
import json, math, re, sys
d, mode, seconds, senders = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split()
def pct(xs, p):
    xs = sorted(xs)                         # nearest rank
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]
samples = []
for line in open(f"{d}/queue.txt"):
    t, b, p = line.split()
    if 1.5 <= float(t) <= seconds - 0.3:     # skip TCP slow start and the end of the transfer
        samples.append(int(p))
bits = 0.0
for h in senders:
    try:
        o = json.load(open(f"{d}/client-{h}.json"))
        bits += o["end"]["sum_received"]["bits_per_second"]
    except Exception as e:
        print(f"{h}: no iperf3 result ({e})", file=sys.stderr); sys.exit(2)
if not samples:
    print("no backlog samples after slow start", file=sys.stderr); sys.exit(2)
rtts = [float(m) for m in re.findall(r"time=([0-9.]+) ms", open(f"{d}/ping.txt").read())]
goodput = bits / 1e6
rate = 100.0                                  # the tbf, Mbit/s
p50, p99 = (f"{pct(rtts, p):10.2f}" if rtts else f"{'-':>10}" for p in (50, 99))
print(f"{mode:<11} {pct(samples, 99):16d} {max(samples):16d} {goodput:12.1f} {100 * goodput / rate:11.1f} "
      f"{p50} {p99} {len(samples):7d}")
PY

# GET http://127.0.0.1:9465/status in the current namespace; prints the JSON body.
cat >"$work/status.py" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen("http://127.0.0.1:9465/status", timeout=2) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    print(e, file=sys.stderr); sys.exit(1)
PY
agent_status() { timeout 5 ip netns exec "${tag}$1" python3 "$work/status.py"; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# ---------------------------------------------------------------- topology
echo "== topology: bridge, arbiter, senders h1..h4, receiver r; tbf 100 Mbit/s towards r"
ip netns add "$sw"
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
ip netns exec "$sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
offload_off() { # namespace device: no TSO/GSO/GRO, so every packet in the tbf is one frame
  if command -v ethtool >/dev/null; then
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off 2>/dev/null || true
  else
    ip -n "$1" link set dev "$2" gso_max_segs 1 2>/dev/null || true
  fi
}
i=0
for name in a "${hosts[@]}"; do
  ns="${tag}${name}"; i=$((i + 1))
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip link add "${tag}p$i" type veth peer name "${tag}q$i"
  ip link set "${tag}p$i" netns "$ns"
  ip link set "${tag}q$i" netns "$sw"
  ip -n "$sw" link set "${tag}q$i" master br0 up
  ip -n "$ns" link set "${tag}p$i" name eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "${address[$name]}/24" dev eth0
  offload_off "$ns" eth0
  offload_off "$sw" "${tag}q$i"
  if [ "$name" = r ]; then port="${tag}q$i"; fi
done
# burst 3100: two 1514-byte frames (tc rounds 3028 down to 3025, one frame; below 1514 the
# kernel drops every full-size frame). limit 2 MB: about 1300 frames of buffer.
ip netns exec "$sw" tc qdisc add dev "$port" root tbf rate 100mbit burst 3100 limit 2000000
if command -v ethtool >/dev/null; then
  ip netns exec "${tag}h1" ethtool -k eth0 | grep -q "generic-segmentation-offload: off" \
    || echo "agent-netns: note: GSO still on in h1 (frames in the tbf may be larger than one MTU)"
else
  echo "agent-netns: note: no ethtool; GSO limited with gso_max_segs 1"
fi
# Reachability before anything runs.
for h in "${hosts[@]}"; do
  timeout 10 ip netns exec "${tag}$h" ping -c 1 -W 2 -q "${address[a]}" >/dev/null || fail "$h cannot reach the arbiter's namespace"
done

# ---------------------------------------------------------------- measurement
# measure MODE: four iperf3 flows h1..h4 → r for $duration s, the tbf sampled, h1 pinging r.
measure() {
  local mode=$1 dir="$work/$1" n=0 p status=0 h
  mkdir -p "$dir"
  local server_pids=() client_pids=()
  for h in "${senders[@]}"; do
    n=$((n + 1))
    spawn "${tag}r" "$dir/server-$h.log" timeout $((duration + 30)) iperf3 -s -1 -p $((5200 + n))
    server_pids+=("$last_pid")
  done
  for _ in $(seq 50); do
    [ "$(ip netns exec "${tag}r" ss -Hltn 'sport >= :5201 and sport <= :5204' | wc -l)" -ge 4 ] && break
    sleep 0.1
  done
  spawn "$sw" "$dir/sampler.err" python3 "$work/sampler.py" "$port" "$duration" "$dir/queue.txt"
  local sampler=$last_pid
  n=0
  for h in "${senders[@]}"; do
    n=$((n + 1))
    ip netns exec "${tag}$h" timeout $((duration + 20)) iperf3 -c "$receiver" -p $((5200 + n)) -t "$duration" \
      -C "$congestion" --connect-timeout 3000 -J >"$dir/client-$h.json" 2>"$dir/client-$h.err" &
    client_pids+=("$!"); pids+=("$!")
  done
  # Ping from the end of slow start to shortly before the flows end.
  local count=$(((duration - 2) * 100))
  (sleep 1.5; exec ip netns exec "${tag}h1" timeout $((duration + 5)) ping -n -i 0.01 -c "$count" -W 1 "$receiver") \
    >"$dir/ping.txt" 2>&1 &
  local pinger=$!; pids+=("$pinger")
  for p in "${client_pids[@]}"; do wait "$p" || status=1; done
  wait_exit "$sampler" 10 || true
  wait_exit "$pinger" 10 || true
  for p in "${server_pids[@]}"; do wait_exit "$p" 5 || kill "$p" 2>/dev/null || true; done
  [ $status -eq 0 ] || fail "$mode: an iperf3 client failed: $(client_errors "$dir"/client-*.json; cat "$dir"/client-*.err)"
  [ -s "$dir/queue.txt" ] || fail "$mode: the sampler recorded nothing: $(cat "$dir/sampler.err")"
  row=$(python3 "$work/analyze.py" "$dir" "$mode" "$duration" "${senders[*]}") || fail "$mode: no result"
  rows+=("$row")
  echo "$header"; echo "$row"
  cat "$dir/sampler.err"
  if [ -n "${FP_RESULTS:-}" ]; then
    { echo "$header"; printf '%s\n' "${rows[@]}"; } >"$FP_RESULTS"
  fi
}
# field N of the last row (1 = mode)
row_field() { echo "$row" | awk -v n="$1" '{print $n}'; }
# check VALUE OP THRESHOLD LABEL: prints the figure with its margin to the threshold (a
# check that passes by a hair will flake), and returns whether it holds.
check() {
  awk -v a="$1" -v b="$3" -v op="$2" -v label="$4" 'BEGIN {
    ok = (op == ">=") ? (a >= b) : (a <= b)
    margin = (b == 0) ? "n/a" : sprintf("%+.1f %%", 100 * ((op == ">=") ? (a - b) : (b - a)) / b)
    printf "checked: %s %s %s %s (margin %s)%s\n", label, a, op, b, margin, ok ? "" : " FAILED"
    exit !ok
  }'
}

echo "== no-agents: plain TCP into the tbf for ${duration} s"
measure no-agents
check "$(row_field 2)" ">=" 30 "backlog p99 without agents, packets" || fail "without agents the backlog p99 is $(row_field 2) packets, not ≥ 30: the bottleneck does not queue"

if [ ! -x "$bin/fastpass-agent" ]; then
  fail "fastpass-agent is missing ($bin/fastpass-agent): baseline measured, agent phases not run"
fi

# ---------------------------------------------------------------- arbiter and agents
cat >"$work/arbiter.yaml" <<YAML
listen: ${address[a]}
metrics: 127.0.0.1:9464
# Batches of 4 slots (0.5 ms) allocated 8 slots (1 ms) ahead; the communication thread at
# real-time priority, or it wakes late for its batches with everything else on two CPUs.
batch_size: 8
lookahead_slots: 8
realtime_priority: 50
log_level: info
topology:
  racks: 1
  spines: 1
  host_gbps: 0.1
  slot_bytes: ${FP_SLOT_BYTES:-1600}
  hosts:
YAML
for h in "${hosts[@]}"; do
  echo "    - {id: ${node[$h]}, address: ${address[$h]}, rack: 0}" >>"$work/arbiter.yaml"
done
"$bin/fastpass-arbiter" --check-config "$work/arbiter.yaml" >/dev/null || fail "arbiter configuration rejected"

start_arbiter() {
  ip netns exec "${tag}a" "$bin/fastpass-arbiter" --config "$work/arbiter.yaml" >>"$work/arbiter.log" 2>&1 &
  arbiter_pid=$!; pids+=("$arbiter_pid")
  for _ in $(seq 50); do
    ip netns exec "${tag}a" "$bin/fastpassctl" status --json >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "the arbiter did not come up"
}

for h in "${hosts[@]}"; do
  {
    echo "arbiter: ${address[a]}"
    echo "address: ${address[$h]}"
    echo "node: ${node[$h]}"
    echo "interface: eth0"
    echo "slot_bytes: 1500"
    echo "metrics: 127.0.0.1:9465"
    echo "log_level: info"
    echo "unreachable: {policy: fallback, after_ms: 300}"
    # The pacing thread at real-time priority wakes on time though iperf3, the tbf and
    # five agents share two CPUs; it releases 30 µs ahead to cover that wake-up.
    echo "pacing: {mode: sleep, priority: 50}"
    echo "release_lead_ns: ${FP_LEAD_NS:-30000}"
    echo "late_release_limit_ns: ${FP_LATE_NS:-256000}"
    echo "peers:"
    for o in "${hosts[@]}"; do
      [ "$o" = "$h" ] || echo "  - {id: ${node[$o]}, address: ${address[$o]}}"
    done
  } >"$work/agent-$h.yaml"
done

start_agent() { # host
  ip netns exec "${tag}$1" "$bin/fastpass-agent" --config "$work/agent-$1.yaml" >>"$work/agent-$1.log" 2>&1 &
  agent_pid[$1]=$!; pids+=("$!")
}
# wait_agents SECONDS STATE|"" HOST...: fp0 exists and /status answers (and shows STATE)
wait_agents() {
  local seconds=$1 want=$2 h s; shift 2
  local deadline=$((SECONDS + seconds)) pending=("$@")
  while [ ${#pending[@]} -gt 0 ]; do
    local left=()
    for h in "${pending[@]}"; do
      kill -0 "${agent_pid[$h]}" 2>/dev/null || fail "the agent in $h exited"
      if ip -n "${tag}$h" link show fp0 >/dev/null 2>&1 && s=$(agent_status "$h" 2>/dev/null) \
        && { [ -z "$want" ] || [ "$(echo "$s" | json_field state)" = "$want" ]; }; then
        continue
      fi
      left+=("$h")
    done
    pending=("${left[@]+"${left[@]}"}")
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ $SECONDS -ge "$deadline" ]; then
      for h in "${pending[@]}"; do echo "$h: fp0 $(ip -n "${tag}$h" link show fp0 >/dev/null 2>&1 && echo present || echo absent), status $(agent_status "$h" 2>&1)"; done
      fail "agents not ${want:-up} after ${seconds} s: ${pending[*]}"
    fi
    sleep 0.2
  done
}

echo "== agents: arbiter and an agent on every host"
start_arbiter
for h in "${hosts[@]}"; do start_agent "$h"; done
wait_agents 10 "" "${hosts[@]}"
wait_agents 10 scheduled "${hosts[@]}"
echo "agents up and scheduled: ${hosts[*]}"
measure agents
echo "$header"; printf '%s\n' "${rows[@]}"
for h in "${hosts[@]}"; do
  s=$(agent_status "$h") || fail "no status from the agent in $h"
  released=$(echo "$s" | json_field packets_released)
  echo "$h: $(echo "$s" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(", ".join(f"{k} {o.get(k)}" for k in ("state","packets_released","slots_requested","slots_used","slots_missed","allocations_unused","allocations_after_planned_release","packets_unscheduled","fallbacks","dropped_queue_full")) + " lateness p50/p99 ns " + str(o.get("release_lateness_ns")))')"
  [ "$h" = r ] || [ "$released" -gt 0 ] || fail "the agent in $h released no packets: $s"
  # Everything must have gone in timeslots: a fallback would make the row meaningless.
  [ "$(echo "$s" | json_field packets_unscheduled)" -eq 0 ] && [ "$(echo "$s" | json_field fallbacks)" -eq 0 ] \
    || fail "the agent in $h sent packets unscheduled during the agents row: $s"
done

timeout 5 ip netns exec "${tag}a" "$bin/fastpassctl" status --address 127.0.0.1:9464 \
  | grep -E "demand|allocated|skipped|lateness" || true
check "$(row_field 2)" "<=" 3 "backlog p99 with agents, packets" || fail "with agents the backlog p99 is $(row_field 2) packets, not ≤ 3"
check "$(row_field 5)" ">=" 85 "goodput with agents, % of 100 Mbit/s" || fail "with agents the goodput is $(row_field 5) % of 100 Mbit/s, not ≥ 85 %"

# ---------------------------------------------------------------- arbiter restart
echo "== arbiter restart: kill -9 at 4 s into a 16 s h1+h2 transfer, started again at 7 s"
dir="$work/restart"; mkdir -p "$dir"
# Status reads run in parallel and the kill and the restart go by the clock: read one
# after another, five reads take seconds on this loaded machine, which once pushed the
# restart past the end of the transfer.
statuses() { # NAME: every agent's /status into $dir/NAME-HOST.json
  local h readers=()
  for h in "${hosts[@]}"; do
    agent_status "$h" >"$dir/$1-$h.json" 2>/dev/null &
    readers+=("$!")
  done
  for h in "${readers[@]}"; do wait "$h" || true; done
}
at() { # T: sleep until T seconds after $t0
  local left
  left=$(python3 -c 'import sys,time; print(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - time.time()))' "$t0" "$1")
  sleep "$left"
}
restart_servers=()
for n in 1 2; do
  spawn "${tag}r" "$dir/server-h$n.log" timeout 60 iperf3 -s -1 -p $((5210 + n))
  restart_servers+=("$last_pid")
done
for _ in $(seq 50); do
  [ "$(ip netns exec "${tag}r" ss -Hltn 'sport >= :5211 and sport <= :5212' | wc -l)" -ge 2 ] && break
  sleep 0.1
done
restart_clients=()
t0=$(date +%s.%N)
for n in 1 2; do
  ip netns exec "${tag}h$n" timeout 40 iperf3 -c "$receiver" -p $((5210 + n)) -t 16 -i 1 -C "$congestion" --connect-timeout 3000 -J \
    >"$dir/client-h$n.json" 2>"$dir/client-h$n.err" &
  restart_clients+=("$!"); pids+=("$!")
done
# Each agent's CPU time (utime + stime, clock ticks), to show what a dead arbiter costs.
cpu_ticks() { local h; for h in "${hosts[@]}"; do awk '{printf "%d ", $14 + $15}' "/proc/${agent_pid[$h]}/stat"; done; }
cpu_share() { # LABEL TICKS-BEFORE TICKS-AFTER SECONDS
  python3 - "${hosts[*]}" "$2" "$3" "$4" "$(getconf CLK_TCK)" "$1" <<'PY'
import sys
hosts, a, b, s, hz, label = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3].split(), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
print(f"agent CPU, % of one core, {label}:", ", ".join(f"{h} {100 * (int(y) - int(x)) / hz / s:.0f}" for h, x, y in zip(hosts, a, b)))
PY
}
at 2; ticks_up=$(cpu_ticks)
at 3; statuses before
at 4; kill -9 "$arbiter_pid"; wait "$arbiter_pid" 2>/dev/null || true
echo "t≈4 s: arbiter killed (kill -9)"
ticks_down=$(cpu_ticks)
at 6; statuses down
ticks_later=$(cpu_ticks)
cpu_share "arbiter up (t≈2→4 s)" "$ticks_up" "$ticks_down" 2
cpu_share "arbiter dead (t≈4→6 s)" "$ticks_down" "$ticks_later" 2
at 7; start_arbiter
echo "t≈$(python3 -c 'import sys,time; print(round(time.time() - float(sys.argv[1]), 1))' "$t0") s: arbiter started again"
at 9; statuses restarted
for h in "${hosts[@]}"; do [ -s "$dir/restarted-$h.json" ] || fail "no status from the agent in $h after the restart"; done
status=0
for p in "${restart_clients[@]}"; do wait "$p" || status=1; done
for p in "${restart_servers[@]}"; do wait_exit "$p" 5 || kill "$p" 2>/dev/null || true; done
[ $status -eq 0 ] || fail "restart: an iperf3 client failed: $(client_errors "$dir"/client-*.json; cat "$dir"/client-*.err)"
statuses end
for h in "${hosts[@]}"; do [ -s "$dir/end-$h.json" ] || fail "no status from the agent in $h at the end"; done
python3 - "$dir" "${hosts[*]}" <<'PY' || fail "the flows or the agents did not recover from the arbiter restart"
import json, sys
d, hosts = sys.argv[1], sys.argv[2].split()
def load(f):
    try: return json.load(open(f))
    except Exception: return {}
ok = True
per_second = []
for h in ("h1", "h2"):
    iv = [i["sum"] for i in json.load(open(f"{d}/client-{h}.json"))["intervals"] if i["sum"]["seconds"] >= 0.5]
    per_second.append([i["bits_per_second"] / 1e6 for i in iv])
total = [sum(x) for x in zip(*per_second)]
print("h1+h2 Mbit/s per second:", " ".join(f"{x:.0f}" for x in total))
last = total[-3:]
if len(last) < 3 or min(last) <= 10:
    print(f"not resumed: last 3 s {last} Mbit/s (need > 10 each)"); ok = False
print(f"{'agent':<5} {'state@3s':<10} {'state@6s':<10} {'state@9s':<10} {'state@end':<10} fallbacks(3s→end) unscheduled(3s→end) released(9s→end)")
for h in hosts:
    b, dn, r, e = (load(f"{d}/{w}-{h}.json") for w in ("before", "down", "restarted", "end"))
    print(f"{h:<5} {b.get('state','?'):<10} {dn.get('state','?'):<10} {r.get('state','?'):<10} {e.get('state','?'):<10} "
          f"{b.get('fallbacks','?')}→{e.get('fallbacks','?')}  {b.get('packets_unscheduled','?')}→{e.get('packets_unscheduled','?')}  "
          f"{r.get('packets_released','?')}→{e.get('packets_released','?')}")
    if e.get("state") != "scheduled":
        print(f"{h}: state {e.get('state')!r} at the end, not 'scheduled'"); ok = False
    # h1, h2 send data and r the ACKs; h3 and h4 are idle.
    if h in ("h1", "h2") and dn.get("state") != "fallback":
        print(f"{h}: state {dn.get('state')!r} with the arbiter dead, not 'fallback'"); ok = False
    welcomes = lambda o: o.get("session", {}).get("welcomes_received", 0)
    if h in ("h1", "h2", "r") and not welcomes(e) > welcomes(b):
        print(f"{h}: no new welcome after the restart (reset handshake not done)"); ok = False
    if h in ("h1", "h2", "r") and not e.get("packets_released", 0) > r.get("packets_released", 0):
        print(f"{h}: packets_released did not grow after the restart"); ok = False
sys.exit(0 if ok else 1)
PY

# ---------------------------------------------------------------- crash cleanup
echo "== crash cleanup: kill -9 of h1's agent, --cleanup, restart over leftovers, SIGTERM"
ns1="${tag}h1"
rule_count() { ip -n "$1" rule show pref 1000 2>/dev/null | grep -c . || true; }
table_routes() { # routes left in table 222 ("" when none; a missing table is empty)
  local out
  out=$(ip -n "$1" route show table 222 2>&1) || { echo "$out" | grep -q "does not exist" && return 0; }
  echo "$out"
}
gone_within() { # namespace seconds: fp0 disappears
  local deadline=$((SECONDS + $2))
  while ip -n "$1" link show fp0 >/dev/null 2>&1; do
    [ $SECONDS -ge "$deadline" ] && return 1
    sleep 0.1
  done
}
crash_h1() {
  kill -9 "${agent_pid[h1]}"; wait "${agent_pid[h1]}" 2>/dev/null || true
  gone_within "$ns1" 3 || fail "h1: fp0 still there 3 s after kill -9 of the agent"
  [ "$(rule_count "$ns1")" -ge 1 ] || fail "h1: no rule at priority 1000 after kill -9 (expected the crashed agent's leftover)"
}
crash_h1
echo "kill -9: fp0 gone, rule at priority 1000 left: $(ip -n "$ns1" rule show pref 1000 | head -1)"
timeout 10 ip netns exec "$ns1" "$bin/fastpass-agent" --config "$work/agent-h1.yaml" --cleanup >>"$work/agent-h1.log" 2>&1 \
  || fail "h1: fastpass-agent --cleanup exited non-zero"
[ "$(rule_count "$ns1")" -eq 0 ] || fail "h1: rule at priority 1000 still there after --cleanup: $(ip -n "$ns1" rule show pref 1000)"
[ -z "$(table_routes "$ns1")" ] || fail "h1: table 222 not empty after --cleanup: $(table_routes "$ns1")"
echo "--cleanup: rule and table 222 gone"
start_agent h1
wait_agents 10 "" h1
crash_h1
start_agent h1     # over the leftovers, without --cleanup
wait_agents 10 scheduled h1
[ "$(rule_count "$ns1")" -eq 1 ] || fail "h1: $(rule_count "$ns1") rules at priority 1000 after starting over leftovers, not 1: $(ip -n "$ns1" rule show pref 1000)"
echo "started over a crashed agent's leftovers: up, scheduled, one rule"

for h in "${hosts[@]}"; do kill -TERM "${agent_pid[$h]}"; done
for h in "${hosts[@]}"; do
  status=0; wait_exit "${agent_pid[$h]}" 10 || status=$?
  [ $status -eq 124 ] && fail "the agent in $h did not exit within 10 s of SIGTERM"
  [ $status -eq 0 ] || fail "the agent in $h exited with status $status after SIGTERM"
done
for h in "${hosts[@]}"; do
  ns="${tag}$h"; left=()
  ip -n "$ns" link show fp0 >/dev/null 2>&1 && left+=("fp0")
  [ "$(rule_count "$ns")" -eq 0 ] || left+=("rule: $(ip -n "$ns" rule show pref 1000 | tr '\n' ' ')")
  routes=$(table_routes "$ns"); [ -z "$routes" ] || left+=("table 222: $(echo "$routes" | tr '\n' ' ')")
  [ ${#left[@]} -eq 0 ] || fail "$h: left after SIGTERM: ${left[*]}"
done
echo "SIGTERM: every agent exited 0, no fp0, rule or route left in any namespace"

kill -TERM "$arbiter_pid"
wait_exit "$arbiter_pid" 10 || fail "the arbiter did not stop cleanly after SIGTERM"
arbiter_pid=""
echo "$header"; printf '%s\n' "${rows[@]}"
echo "PASS agent-netns"
