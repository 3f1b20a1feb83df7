#!/usr/bin/env bash
# Persist before acknowledge, observed from outside: the broker runs with its WAL fsyncs held
# back (tests/integration/syncgate.c, preloaded). While the fsync of the commit holding a
# node's envelopes cannot finish, the sender gets no acknowledgement (its outbox keeps them)
# and the receiver gets nothing; once the fsync goes through, both happen. The same for a
# receiving node: while its inbox commit cannot be made durable, it acknowledges nothing to the
# broker and shows nothing to its follower; and for a sending node: while its outbox commit is
# held, the operator is not told "accepted" and nothing is published. A node goes on working
# while its fsync runs (the next group is read, applied and committed meanwhile), so each node
# half sends a second batch during the hold: neither batch may show before its own sync.
source "$(dirname "$0")/lib.sh"

syncgate_preload "$NODE" >/dev/null || exit 1
stamp() { [ -e "$1" ]; }
N=10
CH=case:2026-0606

# gated NAME PROGRAM: writes $NET/NAME-gated, which runs PROGRAM with its WAL fsyncs held
# while $NET/armed-NAME exists and $NET/gate-NAME does not (it creates $NET/blocked-NAME then),
# and prints its path. Only the daemon gets the shim, not the helpers that start it.
gated() {
  cat >"$NET/$1-gated" <<WRAP
#!/bin/sh
LD_PRELOAD="$(syncgate_preload "$2")" LIA_SYNC_ARMED="$NET/armed-$1" LIA_SYNC_GATE="$NET/gate-$1" \\
  LIA_SYNC_BLOCKED="$NET/blocked-$1" exec "$2" "\$@"
WRAP
  chmod +x "$NET/$1-gated"
  echo "$NET/$1-gated"
}

net_authority
net_identity broker broker EU
for id in fr-ncp de-ncp; do net_identity "$id" contact-point "$(tr a-z A-Z <<<"${id:0:2}")"; done
BROKER=$(gated broker "$BROKER") start_broker
NODE=$(gated sender "$NODE") start_node fr-ncp
NODE=$(gated node "$NODE") start_node de-ncp
channel_create fr-ncp "$CH" de-ncp >/dev/null

# ---- the broker's commit is held ----
touch "$NET/armed-broker"
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count "$N" >"$NET/send.json"
check "fr-ncp accepted all $N (its own outbox is durable)" \
  grep -q "\"accepted\":$N," "$NET/send.json"
check "the broker is inside the fsync of its log" wait_until 20 stamp "$NET/blocked-broker"
check "no acknowledgement while that fsync is held: fr-ncp still holds all $N" \
  test "$(node_status fr-ncp "outbox pending")" = "$N"
check "nothing delivered meanwhile" test "$(node_status de-ncp "inbox cursor")" = 0
touch "$NET/gate-broker"
check "once the fsync completes, the broker acknowledges everything" \
  wait_until 30 outbox_drained fr-ncp
check "and de-ncp receives all $N" wait_until 30 cursor_at_least de-ncp "$N"

# ---- the receiving node's commit is held ----
"$LOAD" recv --socket "$(sock de-ncp)" --channel "$CH" --count $((2 * N)) --start "$N" --after "$N" \
  --timeout-ms 60000 >"$NET/recv.json" &
recv_pid=$!
touch "$NET/armed-node"
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count "$N" --start "$N" >"$NET/send2.json"
check "fr-ncp accepted $N more" grep -q "\"accepted\":$N," "$NET/send2.json"
check "the broker acknowledged them (its log is not held now)" wait_until 30 outbox_drained fr-ncp
check "de-ncp is inside the fsync of its inbox commit" wait_until 20 stamp "$NET/blocked-node"
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count "$N" --start $((2 * N)) >"$NET/send2b.json"
check "a second batch, sent meanwhile, is stored by the broker and delivered" \
  wait_until 30 outbox_drained fr-ncp
check "its follower has been shown none of the $((2 * N)) yet" kill -0 "$recv_pid"
touch "$NET/gate-node"
check "once durable, the follower gets all $((2 * N)) once, in order" wait "$recv_pid"
check "and de-ncp's cursor reaches $((3 * N))" wait_until 30 cursor_at_least de-ncp $((3 * N))

# ---- the sending node's commit is held ----
touch "$NET/armed-sender"
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count "$N" --start $((3 * N)) \
  >"$NET/send3.json" &
send_pid=$!
check "fr-ncp is inside the fsync of its outbox commit" wait_until 20 stamp "$NET/blocked-sender"
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count "$N" --start $((4 * N)) \
  >"$NET/send3b.json" &
send2_pid=$!
check "the operators have not been told 'accepted' yet" kill -0 "$send_pid"
check "(neither of them)" kill -0 "$send2_pid"
check "and nothing was published: de-ncp got none of them" \
  test "$(node_status de-ncp "inbox cursor")" = $((3 * N))
touch "$NET/gate-sender"
check "once durable, all $N are accepted" wait "$send_pid"
check "and the second $N" wait "$send2_pid"
check "and delivered" wait_until 30 cursor_at_least de-ncp $((5 * N))
finish
