#!/usr/bin/env bash
# Receivers that are not running while a channel carries 10,000 messages get every one of them
# when they come back, once each and in order: a node stopped with SIGTERM, a node killed with
# SIGKILL (both while the stream is under way, after they had received part of it), and a node
# that was never started before the messages were published.
source "$(dirname "$0")/lib.sh"

N=10000
CH=case:2026-0099
net_authority
net_identity broker broker EU
for id in fr-ncp de-ncp nl-ncp pl-ncp; do
  net_identity "$id" contact-point "$(tr a-z A-Z <<<"${id:0:2}")"
done
start_broker
for id in fr-ncp de-ncp nl-ncp; do start_node "$id"; done # pl-ncp: not yet
# pl-ncp is a member but not running: it learns of the channel when it first connects.
WAIT_FOR="fr-ncp de-ncp nl-ncp" channel_create fr-ncp "$CH" de-ncp nl-ncp pl-ncp

both_received() { cursor_at_least de-ncp 1 && cursor_at_least nl-ncp 1; }

"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count "$N" --connect-timeout-ms 10000 \
  >"$NET/send.json" &
send_pid=$!

# Stop the receivers once the stream is under way (each holds part of it, not all).
check "de-ncp and nl-ncp start receiving the stream" \
  wait_until 60 both_received
stop_node de-ncp TERM
stop_node nl-ncp KILL
echo "# de-ncp stopped (SIGTERM), nl-ncp killed (SIGKILL) mid-stream"

wait "$send_pid" || true
cat "$NET/send.json"
check "fr-ncp: all $N messages accepted" grep -q "\"accepted\":$N," "$NET/send.json"
check "the broker acknowledged everything (fr-ncp's outbox drains)" \
  wait_until 60 outbox_drained fr-ncp

start_node de-ncp
start_node nl-ncp
start_node pl-ncp
for id in de-ncp nl-ncp pl-ncp; do
  check "$id receives all $N once, in order" \
    "$LOAD" recv --socket "$(sock "$id")" --channel "$CH" --count "$N" --timeout-ms 60000 \
    --connect-timeout-ms 10000
  out=$("$LOAD" recv --socket "$(sock "$id")" --count $((N + 1)) --timeout-ms 500 || true)
  check "$id holds exactly $N messages, no duplicate" \
    grep -q "\"received\":$N,\"expected\":$((N + 1)),\"duplicates\":0,\"out_of_order\":0" <<<"$out"
done
check "no delivery was refused" bash -c "! grep -h 'refused' '$NET'/{de,nl,pl}-ncp/node.log"
check "no broker skipped deliveries" bash -c "! grep -h 'skipped' '$NET'/{de,nl,pl}-ncp/node.log"

# And once more with a node that stays down for the whole stream (SIGTERM then SIGKILL).
stop_node de-ncp TERM
stop_node nl-ncp KILL
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count "$N" --start "$N" >"$NET/send2.json" ||
  true
check "fr-ncp: $N more accepted while de-ncp and nl-ncp are down" \
  grep -q "\"accepted\":$N," "$NET/send2.json"
start_node de-ncp
start_node nl-ncp
for id in de-ncp nl-ncp pl-ncp; do
  check "$id receives the second $N once, in order, after the first" \
    "$LOAD" recv --socket "$(sock "$id")" --channel "$CH" --count "$N" --start "$N" --after "$N" \
    --timeout-ms 60000 --connect-timeout-ms 10000
done
finish
