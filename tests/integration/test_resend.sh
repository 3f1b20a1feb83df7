#!/usr/bin/env bash
# The resend timer of a node: envelopes the broker has not acknowledged are published again
# after resend-ms (2 s here) without an acknowledgement, counted from the first publish when
# nothing was waiting. A burst that follows a quiet spell is not resent while the broker takes
# less than resend-ms to acknowledge it (the clock used to run from the last acknowledgement,
# so a heartbeat early in such a burst resent all of it); a broker that stops acknowledging for
# longer gets it again. Time passing is the scenario here, hence the sleeps.
source "$(dirname "$0")/lib.sh"

RESEND_MS=2000
net_up fr-ncp de-ncp
channel_create fr-ncp case:2026-0601 de-ncp >/dev/null
again="publishing the [0-9]* unacknowledged envelopes again"

sleep 2.5 # a quiet spell longer than resend-ms, nothing awaiting an acknowledgement
kill -STOP "$BROKER_PID"
"$LOAD" send --socket "$(sock fr-ncp)" --channel case:2026-0601 --count 200 >/dev/null
sleep 1 # the broker acknowledges nothing for 1 s (heartbeats every 200 ms), less than resend-ms
kill -CONT "$BROKER_PID"
check "de-ncp receives the 200, once and in order" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel case:2026-0601 --count 200 --timeout-ms 30000
check "fr-ncp's outbox drains" wait_until 30 outbox_drained fr-ncp
check_fails "nothing was published twice: the broker answered within resend-ms" \
  grep -q "$again" "$NET/fr-ncp/node.log"

# The broker stops answering for longer: what it has not acknowledged goes again.
kill -STOP "$BROKER_PID"
"$LOAD" send --socket "$(sock fr-ncp)" --channel case:2026-0601 --count 50 --start 200 \
  >/dev/null
check "unacknowledged envelopes are published again after resend-ms" \
  wait_until 10 grep -q "$again" "$NET/fr-ncp/node.log"
kill -CONT "$BROKER_PID"
check "de-ncp then receives the 50, once and in order" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel case:2026-0601 --count 50 --start 200 \
  --after 200 --timeout-ms 30000
check "fr-ncp's outbox drains again" wait_until 30 outbox_drained fr-ncp
finish
