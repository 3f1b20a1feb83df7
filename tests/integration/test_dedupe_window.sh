#!/usr/bin/env bash
# The broker forgets the message ids of envelopes that every recipient acknowledged once they
# are older than dedupe-days (0 here: as soon as they are delivered). What is still owed to an
# absent node is kept and delivered when it returns; delivery goes on in order after rows were
# forgotten. A round of forgetting starts when the broker starts (then at most once a minute),
# so each check restarts the broker.
source "$(dirname "$0")/lib.sh"

BROKER_EXTRA="dedupe-days 0"
net_up fr-ncp de-ncp nl-ncp
channel_create fr-ncp case:2026-0501 de-ncp >/dev/null
channel_create fr-ncp case:2026-0502 nl-ncp >/dev/null
check "the broker understood dedupe-days 0" \
  bash -c "'$BROKER' -n -c '$NET/broker.conf' 2>/dev/null | grep -q '^dedupe-days  *0 '"

forgot() { grep -o "forgot the message ids of [0-9]* envelopes" "$NET/broker.log" | tail -1 |
  grep -o "[0-9][0-9]*"; }

# 200 to de-ncp (running), then 50 to nl-ncp (stopped): those are owed, and the newest.
stop_node nl-ncp
"$LOAD" send --socket "$(sock fr-ncp)" --channel case:2026-0501 --count 200 >/dev/null
"$LOAD" send --socket "$(sock fr-ncp)" --channel case:2026-0502 --count 50 >/dev/null
check "de-ncp receives the 200" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel case:2026-0501 --count 200 --timeout-ms 30000
check "fr-ncp's outbox drains" wait_until 30 outbox_drained fr-ncp

kill_broker TERM
restart_broker
check "the restarted broker forgot the 200 delivered envelopes and kept the 50 owed" \
  wait_until 10 bash -c "grep -q 'forgot the message ids of 200 envelopes' '$NET/broker.log'"

start_node nl-ncp
check "nl-ncp, back, receives the 50 it was owed, in order" \
  "$LOAD" recv --socket "$(sock nl-ncp)" --channel case:2026-0502 --count 50 --timeout-ms 30000 \
  --connect-timeout-ms 10000
check "delivery goes on in order after forgotten rows: de-ncp gets 100 more after its 200" \
  bash -c "'$LOAD' send --socket '$(sock fr-ncp)' --channel case:2026-0501 --count 100 \
    --start 200 >/dev/null && '$LOAD' recv --socket '$(sock de-ncp)' --channel case:2026-0501 \
    --count 100 --start 200 --after 200 --timeout-ms 30000"
check "fr-ncp's outbox drains again" wait_until 30 outbox_drained fr-ncp
check "nl-ncp acknowledged its 50" wait_until 30 cursor_at_least nl-ncp 50

kill_broker TERM
restart_broker
# The 50 are delivered now, and 99 of the 100 (the newest row always stays).
check "the next round forgot the 50 and 99 of the 100 (the newest stays)" \
  wait_until 10 bash -c "grep -q 'forgot the message ids of 149 envelopes' '$NET/broker.log'"
echo "# last round: $(forgot) message ids forgotten"
check "no node was refused anything" bash -c "! grep -h 'refused' '$NET'/{fr,de,nl}-ncp/node.log"
finish
