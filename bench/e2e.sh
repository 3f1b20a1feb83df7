#!/usr/bin/env bash
# End-to-end benchmark: a broker and nodes on 127.0.0.1 with durable settings (fsync), 1 KiB
# payloads (the example case alert), driven through the nodes' control sockets with
# liaison-load. Prints JSON lines. Usage: bench/e2e.sh [BUILD_DIR] [MESSAGES]
set -euo pipefail
export LIA_BUILD_DIR=${1:-build/release}
N=${2:-50000}
MEMORY_RESERVE=48M # the daemons' default (tests use less)
source "$(dirname "$0")/../tests/integration/lib.sh"

BROKER_EXTRA="max-inflight 4096"
NODE_EXTRA="window 4096"
net_up pub sub1 sub2 sub3 sub4
channel_create pub bench:1to1 sub1
channel_create pub bench:1to4 sub1 sub2 sub3 sub4

run() { # run NAME CHANNEL N RATE SUBS...
  local name=$1 ch=$2 n=$3 rate=$4; shift 4
  local start end s pids=() out
  start=$(date +%s.%N)
  for s in "$@"; do
    "$LOAD" recv --socket "$(sock "$s")" --channel "$ch" --count "$n" --start "$OFFSET" \
      --after "${AFTER[$s]:-0}" --timeout-ms 60000 >"$NET/recv-$s.json" &
    pids+=($!)
  done
  "$LOAD" send --socket "$(sock pub)" --channel "$ch" --count "$n" --start "$OFFSET" \
    --rate "$rate" >"$NET/send.json"
  for p in "${pids[@]}"; do wait "$p" || echo "{\"bench\":\"$name\",\"error\":\"a subscriber did not receive everything once and in order\"}"; done
  end=$(date +%s.%N)
  for s in "$@"; do
    AFTER[$s]=$(( ${AFTER[$s]:-0} + n ))
    out=$(cat "$NET/recv-$s.json")
    echo "{\"bench\":\"$name\",\"subscriber\":\"$s\",\"messages\":$n,\"rate\":$rate,\"wall_s\":$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}'),\"delivered_per_s\":$(awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN {printf "%d", n / (b - a)}'),\"recv\":$out}"
  done
  OFFSET=$((OFFSET + n))
}
declare -A AFTER
OFFSET=0
run one_to_one bench:1to1 "$N" 0 sub1
run one_to_four bench:1to4 "$N" 0 sub1 sub2 sub3 sub4
run latency_1000 bench:1to1 10000 1000 sub1
# The same machine's raw ZeroMQ CURVE forwarding rate, as the baseline ratio.
"$B/bench/bench_forward" 200000 2>/dev/null
