#!/usr/bin/env bash
# A revocation that takes effect later: the authority revokes c-ncp as of a time a few seconds
# ahead and the broker loads the list (SIGHUP) before that time. c-ncp stays admitted until
# then; once the revocation time has passed, the broker cuts its session within 5 s without
# any further reload, and refuses its reconnection.
source "$(dirname "$0")/lib.sh"

broker_log_has() { grep -qE -- "$1" "$NET/broker.log"; }
log_has() { grep -qE -- "$2" "$NET/$1/node.log"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
clock_past_ms() { [ "$(ms)" -ge "$1" ]; }

net_authority
net_identity broker broker EU
net_identity a-ncp contact-point AT
net_identity c-ncp contact-point CY
start_broker
start_node a-ncp
start_node c-ncp
check "a-ncp creates case:timed with c-ncp" channel_create a-ncp case:timed c-ncp

at=$(($(date +%s) + 4)) # revoked as of 4 s from now (whole seconds)
"$KEYS" revoke --authority-dir "$NET/authority" --cert "$NET/c-ncp/node.cert" --crl "$NET/crl" \
  --reason "test: leaves the network" --at "$at" --passphrase-file "$NET/pass" >/dev/null
echo "crl $NET/crl" >>"$NET/broker.conf"
lines=$(grep -c "revocation list" "$NET/broker.log" || true)
kill -HUP "$BROKER_PID"
check "broker loads the list" wait_until 10 more_lines "$NET/broker.log" "revocation list" "$lines"
check_fails "before the revocation time c-ncp is still admitted" \
  broker_log_has "c-ncp is no longer admissible"
"$LOAD" send --socket "$(sock c-ncp)" --channel case:timed --count 1 >/dev/null
check "c-ncp's message before its revocation time reaches a-ncp" \
  "$LOAD" recv --socket "$(sock a-ncp)" --channel case:timed --count 1 --timeout-ms 20000

wait_until 10 clock_past_ms $((at * 1000)) # the revocation time itself, not a guess
t0=$(ms)
check "after the revocation time the broker cuts c-ncp, with no reload" wait_until 10 \
  broker_log_has "c-ncp is no longer admissible: cutting its session"
t_cut=$(ms)
echo "# broker: c-ncp cut $((t_cut - t0)) ms after its revocation time (20 ms polling)"
check "the cut came within 5 s of the revocation time" test $((t_cut - t0)) -lt 5000
check "c-ncp's reconnection refused by admission" wait_until 10 \
  broker_log_has "admission: c-ncp refused: certificate has been revoked"

finish
