#!/usr/bin/env bash
# Crashes during a stream of 20,000 messages from fr-ncp to de-ncp:
#  1. the broker is killed with SIGKILL again and again (at varied moments) and restarted;
#  2. then the receiving node is killed with SIGKILL again and again and restarted.
# Every message the sender's API reported as accepted arrives exactly once and in order;
# nothing the broker acknowledged (removed from the sender's outbox) is lost.
source "$(dirname "$0")/lib.sh"

N=20000
RATE=${CRASH_RATE:-1500} # messages per second offered by the sender (pacing the scenario)
KILLS=${CRASH_KILLS:-12}
PAUSES=(0 0.05 0.2 0.4 0.7 1.0) # between kills: varies the moment, waits for no result

net_up fr-ncp de-ncp

# Starts the stream in the background: messages START.. START+N-1 to de-ncp.
start_stream() {
  "$LOAD" send --socket "$(sock fr-ncp)" --to de-ncp --count "$N" --start "$1" --rate "$RATE" \
    --connect-timeout-ms 10000 >"$NET/send-$1.json" &
  SEND_PID=$!
}
running() { kill -0 "$SEND_PID" 2>/dev/null; }
# de-ncp's cursor, or the last one known while it is down.
cursor() { node_status de-ncp "inbox cursor"; }

# The whole stream arrived once, in order, and nothing more.
verify_stream() { # START AFTER
  local start=$1 after=$2 out
  wait "$SEND_PID" || true
  cat "$NET/send-$start.json"
  check "fr-ncp: all $N accepted" grep -q "\"accepted\":$N," "$NET/send-$start.json"
  check "fr-ncp's outbox drains (the broker acknowledged everything)" \
    wait_until 60 outbox_drained fr-ncp
  check "de-ncp receives all $N once, in order" \
    "$LOAD" recv --socket "$(sock de-ncp)" --count "$N" --start "$start" --after "$after" \
    --timeout-ms 60000 --connect-timeout-ms 10000
  out=$("$LOAD" recv --socket "$(sock de-ncp)" --count $((N + 1)) --start "$start" \
    --after "$after" --timeout-ms 500 || true)
  check "de-ncp holds exactly those $N, no duplicate" \
    grep -q "\"received\":$N,\"expected\":$((N + 1)),\"duplicates\":0,\"out_of_order\":0" <<<"$out"
}

# ---- 1. the broker crashes ----
start_stream 0
kills=0
while [ "$kills" -lt "$KILLS" ]; do
  before=$(cursor)
  sleep "${PAUSES[$((kills % ${#PAUSES[@]}))]}" # pacing: vary the moment of the kill
  kill_broker KILL
  kills=$((kills + 1))
  restart_broker || { not_ok "broker restart $kills"; break; }
  # The network recovers after every crash: de-ncp's cursor moves again (until complete).
  if [ "${before:-0}" -lt "$N" ] && ! wait_until 30 cursor_at_least de-ncp $((${before:-0} + 1)); then
    not_ok "de-ncp receives again after broker crash $kills (cursor ${before:-?})"
    break
  fi
done
echo "# broker killed $kills times; sender still running: $(running && echo yes || echo no)"
check "the broker was killed at least 10 times" test "$kills" -ge 10
verify_stream 0 0

# ---- 2. the receiving node crashes ----
start_stream "$N"
kills=0
while [ "$kills" -lt "$KILLS" ]; do
  before=$(cursor)
  sleep "${PAUSES[$((kills % ${#PAUSES[@]}))]}" # pacing: vary the moment of the kill
  stop_node de-ncp KILL
  kills=$((kills + 1))
  start_node de-ncp || { not_ok "de-ncp restart $kills"; break; }
  if [ "${before:-0}" -lt $((2 * N)) ] &&
    ! wait_until 30 cursor_at_least de-ncp $((${before:-0} + 1)); then
    not_ok "de-ncp receives again after its crash $kills (cursor ${before:-?})"
    break
  fi
done
echo "# de-ncp killed $kills times; sender still running: $(running && echo yes || echo no)"
check "de-ncp was killed at least 10 times" test "$kills" -ge 10
verify_stream "$N" "$N"
finish
