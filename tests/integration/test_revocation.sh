#!/usr/bin/env bash
# Revocation in force (issue 4, item 3), with real processes on 127.0.0.1: a broker and the
# nodes a-ncp, b-ncp and c-ncp, members of the channel case:rev-1. The authority revokes c-ncp
# as of a time between two of its messages, while a-ncp and b-ncp are stopped, and the broker
# is given the new revocation list with SIGHUP:
#   - c-ncp's session is cut within 5 s of the SIGHUP and its reconnections are refused;
#   - a-ncp and b-ncp, started again, get the list from the broker (signed by the authority,
#     verified by them) before any delivery: c-ncp's message created before the revocation
#     time is accepted, the one created after it is refused (revoked); b-ncp keeps the list in
#     its `crl` file, a-ncp in its store (both survive a restart without the broker);
#   - a-ncp's next message on the channel is at a new key epoch whose key grant names b-ncp
#     only: the envelope the broker queued for c-ncp (what a compromised broker could hand it)
#     does not open with c-ncp's keys, and opens with b-ncp's;
#   - node SIGHUP: a damaged or older list in the `crl` file is refused with the reason logged
#     and changes nothing, a newer one is applied; a certificate added to the certificates
#     directory becomes usable; a newer list loaded by the broker on SIGHUP reaches every
#     connected node.
source "$(dirname "$0")/lib.sh"

RAW="$B/tests/rawpeer"
BLOG="$B/tests/brokerlog"
ENV="$B/tools/liaison-envelope"
CH=case:rev-1

ms() { echo $(($(date +%s%N) / 1000000)); }
log_has() { grep -qE -- "$2" "$NET/$1/node.log"; }            # log_has NODE PATTERN
broker_log_has() { grep -qE -- "$1" "$NET/broker.log"; }
clock_past() { [ "$(date +%s)" -gt "$1" ]; }                     # the wall clock passed second $1
not_connected() { "$CLI" status --socket "$(sock "$1")" | grep -q "NOT CONNECTED"; }
crl_at() { [ "$(node_status "$1" "revocation list")" = "$2" ]; } # crl_at NODE SERIAL
revoke() { # revoke NODE [--at UNIX]: the authority adds NODE's certificate to $NET/crl
  "$KEYS" revoke --authority-dir "$NET/authority" --cert "$NET/$1/node.cert" --crl "$NET/crl" \
    --reason "test: key compromised" --passphrase-file "$NET/pass" "${@:2}" >/dev/null
}

net_authority
net_identity broker broker EU
net_identity a-ncp contact-point AT
net_identity b-ncp contact-point BE
net_identity c-ncp contact-point CY
net_identity d-ncp contact-point DK # enrolled, never started: revoked later (node SIGHUP)
start_broker
NODE_EXTRA="crl $NET/b-ncp/network.crl" # no file yet: b-ncp keeps the broker's list there
node_conf b-ncp
NODE_EXTRA=""
start_node a-ncp
start_node b-ncp
start_node c-ncp
check "a-ncp creates $CH with b-ncp and c-ncp; every member knows it" \
  channel_create a-ncp "$CH" b-ncp c-ncp

# ---- before: an exchange on the channel at key epoch 1 ----
"$LOAD" send --socket "$(sock a-ncp)" --channel "$CH" --count 1 --start 1 >/dev/null
check "b-ncp receives a-ncp's first message" \
  "$LOAD" recv --socket "$(sock b-ncp)" --channel "$CH" --count 1 --start 1 --timeout-ms 20000
check "c-ncp receives a-ncp's first message" \
  "$LOAD" recv --socket "$(sock c-ncp)" --channel "$CH" --count 1 --start 1 --timeout-ms 20000
check "no revocation list anywhere yet" crl_at a-ncp ""

# ---- c-ncp sends twice while a-ncp and b-ncp are stopped; revoked between the two ----
stop_node a-ncp
stop_node b-ncp
"$LOAD" send --socket "$(sock c-ncp)" --channel "$CH" --count 1 --start 101 >/dev/null
check "c-ncp's message 101 stored at the broker" wait_until 20 outbox_drained c-ncp
t1=$(date +%s) # message 101 was created at or before this second
check "the clock moves to the next second" wait_until 3 clock_past "$t1"
revoked_at=$((t1 + 1))
"$LOAD" send --socket "$(sock c-ncp)" --channel "$CH" --count 1 --start 102 >/dev/null
check "c-ncp's message 102 (created after the revocation time) stored at the broker" \
  wait_until 20 outbox_drained c-ncp

revoke c-ncp --at "$revoked_at"
echo "crl $NET/crl" >>"$NET/broker.conf"
rm -f "$NET/c.ready"
"$RAW" curve --endpoint "$BROKER_EP" --server-cert "$NET/broker/node.cert" \
  --key "$NET/c-ncp/node.key" --hold-ms 15000 --timeout-ms 5000 --ready-file "$NET/c.ready" \
  >"$NET/c.out" 2>"$NET/c.err" &
C_RAW=$!
PIDS+=("$C_RAW")
check "a second session of c-ncp (rawpeer) is up" wait_until 10 test -f "$NET/c.ready"
t0=$(ms)
kill -HUP "$BROKER_PID"
wait_until 10 broker_log_has "c-ncp is no longer admissible: cutting its session"
t_cut=$(ms)
echo "# broker: c-ncp cut $((t_cut - t0)) ms after SIGHUP (upper bound, 20 ms polling)"
check "broker: c-ncp's sessions cut within 5 s of SIGHUP" test $((t_cut - t0)) -lt 5000
check "rawpeer as c-ncp: cut and its reconnection refused" wait_until 10 \
  grep -q '"outcome":"cut-refused"' "$NET/c.out"
wait "$C_RAW" 2>/dev/null || true
cut_at=$(sed -n 's/.*"cut_at_unix_ms":\([0-9]*\).*/\1/p' "$NET/c.out")
echo "# rawpeer: $(cat "$NET/c.out"), $((${cut_at:-0} - t0)) ms after SIGHUP"
check "rawpeer as c-ncp: cut within 5 s of SIGHUP" \
  test -n "$cut_at" -a "$((${cut_at:-0} - t0))" -lt 5000
check "broker: c-ncp's reconnection refused by admission" wait_until 10 \
  broker_log_has "admission: c-ncp refused: certificate has been revoked"
check "c-ncp (the node) is refused at reconnection" wait_until 10 \
  log_has c-ncp "refused this node"
check "c-ncp (the node) is no longer connected" wait_until 10 not_connected c-ncp
check "a new connection as c-ncp is refused" \
  "$RAW" curve --endpoint "$BROKER_EP" --server-cert "$NET/broker/node.cert" \
  --key "$NET/c-ncp/node.key" --expect refused

# ---- a-ncp and b-ncp come back: the list first, then c-ncp's messages ----
start_node a-ncp
start_node b-ncp
for id in a-ncp b-ncp; do
  check "$id: revocation list 1 received from the broker and applied" wait_until 10 \
    log_has "$id" "revocation list 1 from the broker applied: 1 certificate\(s\) newly revoked"
  check "$id: logs which certificate is revoked" \
    log_has "$id" "certificate [0-9a-f]{16} of c-ncp revoked as of"
  check "$id: status shows revocation list 1" crl_at "$id" 1
done
check "b-ncp: the list is saved in its crl file, byte for byte" cmp -s "$NET/crl" "$NET/b-ncp/network.crl"
check "a-ncp: both deliveries of c-ncp processed" wait_until 20 cursor_at_least a-ncp 2
check "b-ncp: both deliveries of c-ncp processed" wait_until 20 cursor_at_least b-ncp 3
for id in a-ncp b-ncp; do
  inbox=$("$CLI" --socket "$(sock "$id")" --json inbox --channel "$CH")
  echo "# $id inbox: $(cut -c1-160 <<<"$inbox" | tr "\n" " ")"
  check "$id: c-ncp's message created before the revocation time is accepted" \
    grep -qE '"sender":"c-ncp","channel":"case:rev-1","sender_seq":"?1"?,' <<<"$inbox"
  check_fails "$id: c-ncp's message created after the revocation time is not in the inbox" \
    grep -qE '"sender":"c-ncp","channel":"case:rev-1","sender_seq":"?2"?,' <<<"$inbox"
  check "$id: it was refused as revoked" \
    log_has "$id" "from c-ncp \(seq 2\) refused: certificate has been revoked"
  check "$id: status counts one refused delivery" test "$(node_status "$id" refused)" = 1
done

# ---- a-ncp's next message: a new key epoch, no key for c-ncp ----
check "a-ncp: a new key epoch for its destinations (certificate revoked)" \
  log_has a-ncp "key epoch 2 started for a destination \(certificate revoked\)"
"$LOAD" send --socket "$(sock a-ncp)" --channel "$CH" --count 1 --start 2 >/dev/null
check "b-ncp receives a-ncp's message at the new epoch" \
  "$LOAD" recv --socket "$(sock b-ncp)" --channel "$CH" --count 1 --start 2 --after 3 \
  --timeout-ms 20000
check "a-ncp: no key grant for c-ncp" \
  log_has a-ncp "no valid certificate for c-ncp: it gets no key for this epoch"
kill_broker TERM
mkdir -p "$NET/cq"
"$BLOG" --store "$NET/broker/broker.db" --node c-ncp --out "$NET/cq" >"$NET/cq.txt"
check "the broker holds a-ncp's new message for c-ncp (the raw envelope)" test -s "$NET/cq.txt"
env=$(tail -1 "$NET/cq.txt" | cut -d' ' -f2)
meta=$("$ENV" inspect --json "$env")
echo "# queued for c-ncp: $meta"
check "that envelope is a-ncp's, at key epoch 2, with one wrapped key (b-ncp's)" \
  grep -q '"sender":"a-ncp","channel":"case:rev-1","recipients":\[\],"epoch":2,"seq":2,.*"granted":1,' <<<"$meta"
open_as() { # open_as NODE: liaison-envelope open of $env with NODE's keys
  "$ENV" open --key "$NET/$1/node.key" --authority "$NET/authority/authority.pub" \
    --cert "$NET/a-ncp/node.cert" --members "$CH=a-ncp,b-ncp,c-ncp" --json "$env" 2>/dev/null
}
out=$(open_as c-ncp || true)
check "c-ncp's keys cannot open it (no key for epoch 2)" grep -q '"ok":false,"error":"no_key"' <<<"$out"
out=$(open_as b-ncp || true)
check "b-ncp's keys open it (control)" grep -q '"ok":true' <<<"$out"

# ---- persistence: without the broker, the lists survive a restart ----
stop_node a-ncp
start_node a-ncp
check "a-ncp (list kept in its store): revocation list 1 after a restart, broker down" crl_at a-ncp 1
check_fails "a-ncp: no second roll for a list already handled" \
  log_has a-ncp "list applied before a restart"
stop_node b-ncp
start_node b-ncp
check "b-ncp (list kept in its crl file): revocation list 1 after a restart" crl_at b-ncp 1
restart_broker

# ---- node SIGHUP: damaged, newer and older lists in the crl file; certificates ----
cp "$NET/crl" "$NET/crl.1"
cp "$NET/crl" "$NET/b-ncp/network.crl"
last=$(($(stat -c %s "$NET/crl") - 1)) # the last byte belongs to the signature: complement it
byte=$(od -An -tu1 -j "$last" -N1 "$NET/crl" | tr -d ' ')
printf "\\$(printf %o $((255 - byte)))" |
  dd of="$NET/b-ncp/network.crl" bs=1 seek="$last" conv=notrunc 2>/dev/null
check "the damaged copy differs from the list" test "$(cmp -l "$NET/crl" "$NET/b-ncp/network.crl" | wc -l)" = 1
kill -HUP "$(node_pid b-ncp)"
check "b-ncp: a damaged list is refused with the reason logged" wait_until 10 \
  log_has b-ncp "revocation list from .*network.crl refused: signature does not verify"
check "b-ncp: and changes nothing" crl_at b-ncp 1
revoke d-ncp # revocation list 2
cp "$NET/crl" "$NET/b-ncp/network.crl"
kill -HUP "$(node_pid b-ncp)"
check "b-ncp: SIGHUP applies the newer list from its crl file" wait_until 10 \
  log_has b-ncp "revocation list 2 from .*network.crl applied: 1 certificate\(s\) newly revoked"
check "b-ncp: status shows revocation list 2" crl_at b-ncp 2
cp "$NET/crl.1" "$NET/b-ncp/network.crl"
kill -HUP "$(node_pid b-ncp)"
check "b-ncp: an older list is refused (never goes back)" wait_until 10 \
  log_has b-ncp "refused: not newer than the one held \(serial 2\)"
check "b-ncp: and changes nothing" crl_at b-ncp 2
cp "$NET/crl" "$NET/b-ncp/network.crl"

# A certificate added to the directory is used after SIGHUP (a direct message to it).
net_identity e-ncp contact-point EE
check_fails "a-ncp: e-ncp is unknown before SIGHUP" \
  "$LOAD" send --socket "$(sock a-ncp)" --to e-ncp --count 1 --start 500
kill -HUP "$BROKER_PID" # enrols e-ncp, loads revocation list 2 and sends it to every node
check "broker: revocation list 2 loaded on SIGHUP" wait_until 10 \
  broker_log_has "revocation list 2 loaded from"
check "a-ncp (connected): revocation list 2 received from the broker" wait_until 10 \
  log_has a-ncp "revocation list 2 from the broker applied: 1 certificate\(s\) newly revoked"
check "a-ncp: status shows revocation list 2" crl_at a-ncp 2
check "a-ncp: another key epoch for its destinations" \
  log_has a-ncp "key epoch 3 started for a destination \(certificate revoked\)"
kill -HUP "$(node_pid a-ncp)"
check "a-ncp: SIGHUP reloads its certificates" wait_until 10 \
  more_lines "$NET/a-ncp/node.log" "reloading certificates" 0
check "a-ncp: e-ncp can be sent to after SIGHUP" wait_until 10 \
  "$LOAD" send --socket "$(sock a-ncp)" --to e-ncp --count 1 --start 500
check "a-ncp: the broker stored it for e-ncp" wait_until 20 outbox_drained a-ncp
check "a-ncp: the list held survives the reload" crl_at a-ncp 2
finish
