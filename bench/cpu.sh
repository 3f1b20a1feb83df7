#!/usr/bin/env bash
# CPU time per message of each process on the 1 -> 1 path (broker, publishing node, subscribing
# node, and the two clients), from /proc/PID/stat over one saturated run. Unlike a rate, CPU
# time per message barely moves with other load on the machine, so it compares changes on a
# busy machine. Also the wall time and delivered rate of the run (a longer run, e.g. 200,000,
# measures the sustained rate: the first tens of thousands of messages warm heaps, caches and
# the WALs). Prints one JSON line. Usage: bench/cpu.sh [BUILD_DIR] [MESSAGES]
set -euo pipefail
export LIA_BUILD_DIR=${1:-build/release}
N=${2:-30000}
MEMORY_RESERVE=48M # the daemons' default (tests use less)
source "$(dirname "$0")/../tests/integration/lib.sh"

BROKER_EXTRA="max-inflight 4096"
NODE_EXTRA="window 4096"
net_up pub sub1
channel_create pub bench:cpu sub1 >/dev/null

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
flt() { awk '{print $10}' "/proc/$1/stat"; } # minor page faults
hz=$(getconf CLK_TCK)
bp=$BROKER_PID pp=$(node_pid pub) sp=$(node_pid sub1)
b0=$(ticks "$bp") p0=$(ticks "$pp") s0=$(ticks "$sp")
bf0=$(flt "$bp") pf0=$(flt "$pp") sf0=$(flt "$sp")
start=$(date +%s.%N)
TIMEFORMAT="%U %S" # bash's own time: user and system seconds of each client
{ time "$LOAD" recv --socket "$(sock sub1)" --channel bench:cpu --count "$N" --timeout-ms 120000 \
  >"$NET/recv.json"; } 2>"$NET/recvtime" &
rp=$!
{ time "$LOAD" send --socket "$(sock pub)" --channel bench:cpu --count "$N" >/dev/null; } \
  2>"$NET/sendtime"
wait "$rp"
end=$(date +%s.%N)
b1=$(ticks "$bp") p1=$(ticks "$pp") s1=$(ticks "$sp")
bf1=$(flt "$bp") pf1=$(flt "$pp") sf1=$(flt "$sp")
fpm() { awk -v a="$1" -v b="$2" -v n="$N" 'BEGIN {printf "%.2f", (b - a) / n}'; }
clientus() { awk -v n="$N" '{printf "%.1f", ($1 + $2) * 1000000 / n}' "$1"; }
us() { awk -v a="$1" -v b="$2" -v hz="$hz" -v n="$N" 'BEGIN {printf "%.1f", (b - a) * 1000000 / hz / n}'; }
printf '{"bench":"cpu_per_message","messages":%s,"wall_s":%s,"delivered_per_s":%s,"broker_us":%s,"pub_node_us":%s,"sub_node_us":%s,"send_client_us":%s,"recv_client_us":%s,"faults_per_msg":{"broker":%s,"pub_node":%s,"sub_node":%s}}\n' \
  "$N" "$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')" \
  "$(awk -v a="$start" -v b="$end" -v n="$N" 'BEGIN {printf "%d", n / (b - a)}')" "$(us "$b0" "$b1")" "$(us "$p0" "$p1")" "$(us "$s0" "$s1")" \
  "$(clientus "$NET/sendtime")" "$(clientus "$NET/recvtime")" \
  "$(fpm "$bf0" "$bf1")" "$(fpm "$pf0" "$pf1")" "$(fpm "$sf0" "$sf1")"
