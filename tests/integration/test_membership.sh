#!/usr/bin/env bash
# Owner-signed channel membership with real processes on 127.0.0.1:
#   - a channel created with `liaison channel create` is known to every member, and only to
#     them; members see the same members, owner, epoch and history;
#   - a non-member cannot publish to it: refused at its own node (clear error) and, sent raw,
#     at the broker (Error NOT_MEMBER, audit line); an unknown channel fails closed; a
#     non-member receives nothing;
#   - a change signed by a member that is not the owner is refused by the broker (Error
#     NOT_OWNER, audit line) and by the CLI of that member;
#   - a removed member gets nothing sent after its removal, and given the raw envelopes sent
#     after it (taken from the broker's store, as a compromised broker could), cannot decrypt
#     any of them with every key it holds, while it does decrypt those sent before;
#   - a member added later verifies the whole chain and reads from the epoch it joins;
#   - a compromised broker (mtool fake-broker, holding the broker's key) that relays a change
#     signed by a non-owner, a change with a bit flipped, and a replayed removal: every member
#     refuses all three and keeps the owner's view.
source "$(dirname "$0")/lib.sh"

RAW="$B/tests/rawpeer"
MT="$B/tests/mtool"
CH=case:2026-0107

net_authority
net_identity broker broker EU
for id in fr-ncp de-ncp nl-ncp it-ncp mt-ncp; do
  net_identity "$id" contact-point "$(tr a-z A-Z <<<"${id:0:2}")"
done
start_broker
for id in fr-ncp de-ncp nl-ncp it-ncp; do start_node "$id"; done # mt-ncp: driven by rawpeer

node_raw() { # node_raw ID MODE ARGS...: rawpeer with the identity of node ID
  "$RAW" "$2" --endpoint "$BROKER_EP" --server-cert "$NET/broker/node.cert" \
    --key "$NET/$1/node.key" "${@:3}"
}
logged() { wait_until 5 grep -qE "$1" "$NET/broker.log"; }
members_are() { [ "$(channel_members_of "$1" "$2")" = "$3" ]; }

# ---- creation ----
check "fr-ncp creates $CH with de-ncp and nl-ncp; every member knows it" \
  channel_create fr-ncp "$CH" de-ncp nl-ncp
for id in fr-ncp de-ncp nl-ncp; do
  check "$id sees members de-ncp fr-ncp nl-ncp" members_are "$id" "$CH" "de-ncp fr-ncp nl-ncp"
done
check "it-ncp (never a member) does not know $CH" \
  bash -c "! '$CLI' --socket '$(sock it-ncp)' channel members '$CH' 2>/dev/null"
out=$("$CLI" --socket "$(sock de-ncp)" channel members "$CH")
check "members shows the owner fr-ncp" grep -q "^owner  *fr-ncp" <<<"$out"
check "members shows epoch 1" grep -q "^epoch  *1" <<<"$out"
hist=$("$CLI" --socket "$(sock nl-ncp)" --json channel history "$CH")
check "history (JSON Lines): one create signed by fr-ncp" \
  grep -q '"action":"create".*"signer":"fr-ncp"' <<<"$hist"
check_fails "creating it again is refused" \
  "$CLI" --socket "$(sock fr-ncp)" channel create "$CH" de-ncp

# ---- non-member publish ----
A=(alert --channel "$CH" --case 2026-0107 --title "Route change" --summary "Trucks via the north"
  --purpose "Preventing smuggling" --legal-basis "Directive (EU) 2023/977"
  --classification RESTRICTED --marking "RESTREINT UE/EU RESTRICTED")
if out=$("$CLI" --socket "$(sock it-ncp)" send "${A[@]}" 2>&1); then rc=0; else rc=$?; fi
check "it-ncp (not a member) cannot send to $CH: exits non-zero ($rc)" test "$rc" -ne 0
check "...with a clear error" grep -q "not a member of that channel" <<<"$out"
out=$(node_raw mt-ncp frame --kind channel-envelope --channel "$CH" || true)
check "a raw envelope from non-member mt-ncp: Error NOT_MEMBER ($out)" \
  grep -q '"outcome":"error","code":4,' <<<"$out"
check "...and the broker writes an audit line" \
  logged "audit: mt-ncp: not a member of channel $CH: publish refused"
out=$(node_raw mt-ncp frame --kind channel-envelope --channel case:nowhere || true)
check "a raw envelope to an unknown channel fails closed: Error UNKNOWN_DESTINATION" \
  grep -q '"outcome":"error","code":5,' <<<"$out"
check "...with an audit line" logged "audit: mt-ncp: publish to unknown channel case:nowhere refused"

# ---- a change signed by a member that is not the owner ----
if out=$("$CLI" --socket "$(sock de-ncp)" channel add "$CH" it-ncp 2>&1); then rc=0; else rc=$?; fi
check "de-ncp (member, not owner) cannot add a member: a clear error" \
  grep -q "not the owner of $CH (the owner is fr-ncp)" <<<"$out"
hash=$("$CLI" --socket "$(sock de-ncp)" --json channel history "$CH" | tail -1 |
  sed -n 's/.*"hash":"\([^"]*\)".*/\1/p')
"$MT" sign --key "$NET/de-ncp/node.key" --channel "$CH" --serial 2 --prev-hash "$hash" \
  --add it-ncp --out "$NET/forged-add.mc"
out=$(node_raw mt-ncp frame --kind membership --change "$NET/forged-add.mc" || true)
check "a change signed by de-ncp (not the owner), published raw: Error NOT_OWNER ($out)" \
  grep -q '"outcome":"error","code":11,' <<<"$out"
check "...with an audit line" \
  logged "audit: mt-ncp: membership change refused: not signed by the channel's owner"
check "...and membership is unchanged" members_are fr-ncp "$CH" "de-ncp fr-ncp nl-ncp"

# ---- traffic, then a removal ----
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count 3 >/dev/null
for id in de-ncp nl-ncp; do
  check "$id receives the first 3" \
    "$LOAD" recv --socket "$(sock "$id")" --channel "$CH" --count 3 --timeout-ms 20000
done
it=$("$LOAD" recv --socket "$(sock it-ncp)" --count 1 --timeout-ms 500 || true)
check "it-ncp (not a member) received nothing" grep -q '"received":0,' <<<"$it"

# de-ncp goes offline: the broker keeps what follows for it (the raw envelopes taken below).
stop_node de-ncp TERM
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count 2 --start 3 >/dev/null
check "nl-ncp receives 2 more before its removal" \
  "$LOAD" recv --socket "$(sock nl-ncp)" --channel "$CH" --count 2 --start 3 --after 3 \
  --timeout-ms 20000
check "fr-ncp removes nl-ncp; fr-ncp and nl-ncp apply it" \
  channel_change fr-ncp remove "$CH" nl-ncp fr-ncp nl-ncp
check "nl-ncp sees itself removed" members_are nl-ncp "$CH" "de-ncp fr-ncp"
check "nl-ncp: this node is NOT a member" \
  bash -c "'$CLI' --socket '$(sock nl-ncp)' channel members '$CH' | grep -q 'NOT a member'"
check "the channel is at epoch 2" \
  bash -c "'$CLI' --socket '$(sock fr-ncp)' channel members '$CH' | grep -q '^epoch  *2'"
check "fr-ncp's sending stream on $CH started a new key epoch" \
  grep -q "key epoch 2 started for a destination (member removed)" "$NET/fr-ncp/node.log"
if "$CLI" --socket "$(sock nl-ncp)" send "${A[@]}" >/dev/null 2>&1; then rc=0; else rc=1; fi
check "nl-ncp can no longer send to $CH" test "$rc" -ne 0
out=$("$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count 3 --start 5)
check "fr-ncp sends 3 after the removal" grep -q '"accepted":3' <<<"$out"
check "the broker stored them (fr-ncp's outbox drains)" wait_until 20 outbox_drained fr-ncp
nl=$("$LOAD" recv --socket "$(sock nl-ncp)" --count 6 --timeout-ms 1000 || true)
check "nl-ncp holds exactly the 5 sent before its removal" grep -q '"received":5,' <<<"$nl"

# The raw envelopes: everything the broker holds for de-ncp (2 before, 3 after the removal).
kill_broker TERM
stop_node nl-ncp TERM
mkdir -p "$NET/raw"
out=$("$MT" dump --store "$NET/broker/broker.db" --node de-ncp --out-dir "$NET/raw")
check "the broker's store holds 5 envelopes for de-ncp ($out)" grep -q '"dumped":5' <<<"$out"
opn=("$MT" open --key "$NET/nl-ncp/node.key" --store "$NET/nl-ncp/node.db"
  --authority "$NET/authority/authority.pub" --certs "$NET/certs")
out=$("${opn[@]}" "$NET/raw/0001.env" "$NET/raw/0002.env")
echo "# before the removal: $out"
check "control: nl-ncp's keys open the 2 envelopes sent before its removal" \
  grep -q '"opened":2,"refused":0' <<<"$out"
out=$("${opn[@]}" "$NET/raw/0003.env" "$NET/raw/0004.env" "$NET/raw/0005.env")
echo "# after the removal: $out"
check "nl-ncp cannot decrypt any of the 3 envelopes sent after its removal" \
  grep -q '"opened":0,"refused":3' <<<"$out"
check "...for want of a key (no key was granted to it)" \
  grep -q '"reasons":"no_key,no_key,no_key"' <<<"$out"

restart_broker
start_node nl-ncp
start_node de-ncp
check "de-ncp, back online, receives the 5 it missed, in order" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel "$CH" --count 5 --start 3 --after 3 \
  --timeout-ms 20000 --connect-timeout-ms 10000
check "de-ncp learnt of the removal too" wait_until 20 members_are de-ncp "$CH" "de-ncp fr-ncp"
nl=$("$LOAD" recv --socket "$(sock nl-ncp)" --count 6 --timeout-ms 1000 || true)
check "nl-ncp still holds exactly 5" grep -q '"received":5,' <<<"$nl"
check "no delivery was refused at de-ncp" bash -c "! grep -q 'refused' '$NET/de-ncp/node.log'"

# ---- a member added later: the whole chain, and the key epoch it joins, not the history ----
check "fr-ncp adds it-ncp; fr-ncp, de-ncp and it-ncp apply it" \
  channel_change fr-ncp add "$CH" it-ncp fr-ncp de-ncp it-ncp
check "it-ncp sees members de-ncp fr-ncp it-ncp" members_are it-ncp "$CH" "de-ncp fr-ncp it-ncp"
n=$("$CLI" --socket "$(sock it-ncp)" channel history "$CH" | wc -l)
check "it-ncp verified the whole chain (create, remove, add)" test "$n" -eq 3
check "fr-ncp's stream started epoch 3 for the new member" \
  grep -q "key epoch 3 started for a destination (member added)" "$NET/fr-ncp/node.log"
"$LOAD" send --socket "$(sock fr-ncp)" --channel "$CH" --count 2 --start 8 >/dev/null
for id in it-ncp de-ncp; do
  check "$id receives the 2 sent after the addition" \
    "$LOAD" recv --socket "$(sock "$id")" --channel "$CH" --count 2 --start 8 \
    --after "$([ "$id" = de-ncp ] && echo 8 || echo 0)" --timeout-ms 20000
done
it=$("$LOAD" recv --socket "$(sock it-ncp)" --count 3 --timeout-ms 1000 || true)
check "it-ncp holds exactly those 2 (nothing from before it joined)" grep -q '"received":2,' <<<"$it"
nl=$("$LOAD" recv --socket "$(sock nl-ncp)" --count 6 --timeout-ms 1000 || true)
check "nl-ncp (removed) still holds exactly 5" grep -q '"received":5,' <<<"$nl"
check "nl-ncp was not told of the later addition" members_are nl-ncp "$CH" "de-ncp fr-ncp"

# ---- a compromised broker relays forged, altered and replayed changes ----
FC=case:2026-0108
T=$(($(date +%s%N) / 1000000))
"$MT" sign --key "$NET/fr-ncp/node.key" --channel "$FC" --serial 1 \
  --create de-ncp,fr-ncp,nl-ncp --at-ms "$T" --out "$NET/c1.mc"
"$MT" sign --key "$NET/de-ncp/node.key" --channel "$FC" --serial 2 --prev "$NET/c1.mc" \
  --add it-ncp --at-ms $((T + 1)) --out "$NET/forged.mc"
"$MT" sign --key "$NET/fr-ncp/node.key" --channel "$FC" --serial 2 --prev "$NET/c1.mc" \
  --remove nl-ncp --at-ms $((T + 2)) --out "$NET/c2.mc"
"$MT" flip --in "$NET/c2.mc" --out "$NET/c2x.mc"
"$MT" sign --key "$NET/fr-ncp/node.key" --channel "$FC" --serial 3 --prev "$NET/c2.mc" \
  --add nl-ncp --at-ms $((T + 3)) --out "$NET/c3.mc"
kill_broker TERM
for id in fr-ncp de-ncp nl-ncp; do stop_node "$id" TERM; done
# In order: the create, a change signed by a non-owner, the owner's removal with one bit
# flipped, the removal itself, the owner's re-addition, and the removal replayed.
"$MT" fake-broker --key "$NET/broker/node.key" --ready-file "$NET/fake.ep" --hold-ms 120000 \
  "$NET/c1.mc" "$NET/forged.mc" "$NET/c2x.mc" "$NET/c2.mc" "$NET/c3.mc" "$NET/c2.mc" \
  2>>"$NET/fake.log" &
PIDS+=($!)
wait_until 10 test -s "$NET/fake.ep"
for id in fr-ncp de-ncp nl-ncp; do
  sed -i "s|^broker .*|broker $(cat "$NET/fake.ep")|" "$NET/$id/node.conf"
  start_node "$id"
done
for id in fr-ncp de-ncp nl-ncp; do
  check "$id applies the owner's 3 changes" wait_until 20 channel_at "$id" "$FC" 3
  check "$id: members de-ncp fr-ncp nl-ncp (forged add and replayed removal refused)" \
    members_are "$id" "$FC" "de-ncp fr-ncp nl-ncp"
  check "$id refused the change signed by the non-owner" \
    grep -q "membership change from the broker refused: not signed by the channel's owner" \
    "$NET/$id/node.log"
  check "$id refused the altered change" \
    grep -q "membership change from the broker refused: signature does not verify" \
    "$NET/$id/node.log"
  n=$("$CLI" --socket "$(sock "$id")" channel history "$FC" | wc -l)
  check "$id: exactly 3 changes in the history" test "$n" -eq 3
  check "$id: the replayed removal left the last change at 3" test "$(channel_serial "$id" "$FC")" = 3
done
finish
