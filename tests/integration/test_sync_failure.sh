#!/usr/bin/env bash
# A failed fsync is fatal for the store, and nothing that depended on it is said. A node's WAL
# syncs fail with EIO (tests/integration/syncgate.c, preloaded, while a file exists): a sending
# node stops (EX_IOERR, 74) without telling the operator "accepted" and without publishing; a
# receiving node stops without acknowledging the delivery to the broker and without showing it
# to its follower. Restarted on a healthy disk, both go on from what their stores hold: the
# broker still owes the receiver the delivery, and the sender's envelope, written but not known
# to be durable, goes out once (the operator, never told it was accepted, may send it again).
source "$(dirname "$0")/lib.sh"
syncgate_preload "$NODE" >/dev/null || exit 1
CH=case:2026-0707
# failing NAME PROGRAM: a wrapper running PROGRAM whose WAL syncs fail while $NET/fail-NAME exists.
failing() {
  cat >"$NET/$1-failing" <<WRAP
#!/bin/sh
LD_PRELOAD="$(syncgate_preload "$2")" LIA_SYNC_FAIL="$NET/fail-$1" exec "$2" "\$@"
WRAP
  chmod +x "$NET/$1-failing"
  echo "$NET/$1-failing"
}
exited() { ! kill -0 "$1" 2>/dev/null; }
# check_stopped ID PID: the node stopped, with EX_IOERR (74) - not a retry - and says why.
check_stopped() {
  local status=0
  check "$1 stops" wait_until 30 exited "$2"
  wait "$2" 2>/dev/null || status=$?
  check "$1 exits with EX_IOERR (74) (status $status)" test "$status" = 74
  check "its log says why" grep -q "fdatasync of the WAL failed; the store stops" "$NET/$1/node.log"
}

net_authority
net_identity broker broker EU
for id in fr-ncp de-ncp; do net_identity "$id" contact-point "$(tr a-z A-Z <<<"${id:0:2}")"; done
start_broker
HEALTHY_NODE=$NODE
NODE=$(failing sender "$HEALTHY_NODE") start_node fr-ncp
NODE=$(failing receiver "$HEALTHY_NODE") start_node de-ncp
channel_create fr-ncp "$CH" de-ncp >/dev/null
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count 1 >"$NET/send1.json"
check "a first alert goes through" wait_until 30 cursor_at_least de-ncp 1

# ---- the sending node's sync fails ----
touch "$NET/fail-sender"
fr_pid=$(node_pid fr-ncp)
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count 1 --start 1 >"$NET/send2.json" 2>&1 ||
  true
check_fails "the operator is not told 'accepted'" grep -q '"accepted":1,' "$NET/send2.json"
check_stopped fr-ncp "$fr_pid"
check "nothing was published: de-ncp still has 1" test "$(node_status de-ncp "inbox cursor")" = 1
rm -f "$NET/fail-sender"
NODE=$HEALTHY_NODE start_node fr-ncp
check "restarted, fr-ncp sends what its store holds: de-ncp gets it" \
  wait_until 30 cursor_at_least de-ncp 2
check "and fr-ncp's outbox drains" wait_until 30 outbox_drained fr-ncp

# ---- the receiving node's sync fails ----
"$LOAD" recv --socket "$(sock de-ncp)" --channel "$CH" --count 1 --start 2 --after 2 \
  --timeout-ms 60000 >"$NET/recv.json" 2>&1 &
recv_pid=$!
touch "$NET/fail-receiver"
de_pid=$(node_pid de-ncp)
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count 1 --start 2 >"$NET/send3.json"
check "fr-ncp accepts a third alert" grep -q '"accepted":1,' "$NET/send3.json"
check_stopped de-ncp "$de_pid" # its inbox commit could not be synced
check_fails "its follower was shown nothing" wait "$recv_pid"
rm -f "$NET/fail-receiver"
NODE=$HEALTHY_NODE start_node de-ncp
check "restarted, de-ncp gets the delivery again from the broker" \
  wait_until 30 cursor_at_least de-ncp 3
check "and its inbox holds the three alerts once each, in order" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel "$CH" --count 3 --timeout-ms 30000
finish
