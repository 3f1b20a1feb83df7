#!/usr/bin/env bash
# The hub role: a hub (certificate role hub) member of two channels, and two contact points
# sending case alerts and route intelligence on both channels and directly to the hub. Every
# message lands in the hub's store; `liaison search` finds them by case reference, person,
# document, vehicle, route place, officer, sender, channel and time; `liaison export` writes
# JSON Lines whose payloads parse back into exactly the payloads sent; the index holds no
# entity in clear; a contact point switched to `hub yes` indexes what it stored before.
source "$(dirname "$0")/lib.sh"
CHECK="$B/tests/jsonl_check"
ME=$(id -un) # the accountable officer the sending daemons record (the socket's account)

net_authority
net_identity broker broker EU
net_identity fr-ncp contact-point FR
net_identity de-ncp contact-point DE
net_identity eu-hub hub EU
start_broker
for id in fr-ncp de-ncp eu-hub; do start_node "$id"; done
# The hub receives the channels because it is a member (copy_to_hub marks them for it).
channel_create fr-ncp ch:case-one de-ncp eu-hub --copy-to-hub
channel_create fr-ncp ch:routes de-ncp eu-hub --copy-to-hub
check "the hub's daemon says it indexes (role hub in its certificate)" \
  grep -q "hub: every received message is indexed" "$NET/eu-hub/node.log"

# ---- the payloads, as `liaison send --json` reads them
gov() { # gov CASE_REF: a governance block
  cat <<JSON
"governance": {"handling_code": "H2", "source_reliability": "B", "information_accuracy": "2",
  "classification_level": "RESTRICTED", "classification_marking": "RESTREINT UE/EU RESTRICTED",
  "tlp": "AMBER", "purpose": "Preventing and combating migrant smuggling",
  "legal_basis": "Directive (EU) 2023/977", "data_subject_categories": ["SUSPECT"],
  "data_basis": "MIXED", "language": "en"${1:+, \"case_reference\": \"$1\"}}
JSON
}
suspect() { # suspect ID FAMILY GIVEN [ALIAS]
  echo "{\"id\": \"$1\", \"role\": \"SUSPECT\", \"family_name\": \"$2\", \"given_names\": \"$3\",
    ${4:+\"aliases\": [\"$4\"],} \"data_subject_category\": \"SUSPECT\"}"
}
cat >"$NET/a1.json" <<JSON
{"version": 1, "officer": "$ME", $(gov 2026-0042),
 "case_alert": {"title": "Van with smuggled migrants", "summary": "Expected at the border.",
  "urgency": "PRIORITY", "entities": {
   "persons": [$(suspect p1 HOXHA Dritan "Dritan the Driver")],
   "documents": [{"id": "d1", "type": "PASSPORT", "number": "BA1234567",
                  "issuing_country": "AL", "holder_ref": "p1"}],
   "vehicles": [{"id": "v1", "plate": "B 123 XY", "country": "RO", "make": "Mercedes-Benz"}]}}}
JSON
cat >"$NET/r1.json" <<JSON
{"version": 1, "officer": "$ME", $(gov ""),
 "route_intelligence": {"title": "Balkan route, eastern branch",
  "modus_operandi": "Vans with a false wall in the cargo area", "entities": {
   "persons": [$(suspect p1 KOVAČ Marta)],
   "vehicles": [{"id": "v1", "plate": "ZG 4471-KL", "country": "HR", "owner_ref": "p1"}],
   "locations": [{"id": "l1", "name": "Kapitan Andreevo", "country": "BG"},
                 {"id": "l2", "name": "Nickelsdorf", "country": "AT"},
                 {"id": "l3", "name": "Munich", "country": "DE"}],
   "routes": [{"id": "r1", "legs": [
     {"from_ref": "l1", "to_ref": "l2", "transport_mode": "ROAD", "vehicle_ref": "v1"},
     {"from_ref": "l2", "to_ref": "l3", "transport_mode": "ROAD", "vehicle_ref": "v1"}]}]}}}
JSON
cat >"$NET/a2.json" <<JSON
{"version": 1, "officer": "$ME", $(gov 2026-0077),
 "case_alert": {"title": "Forged passports seized", "summary": "Two suspects arrested.",
  "urgency": "ROUTINE", "entities": {
   "persons": [$(suspect p1 PETROV Ivan), $(suspect p2 Hoxha Arben)],
   "documents": [{"id": "d1", "type": "PASSPORT", "number": "X9876543",
                  "issuing_country": "BG", "holder_ref": "p1"}],
   "vehicles": [{"id": "v1", "plate": "M-AB 1234", "country": "DE"}]}}}
JSON
cat >"$NET/d1.json" <<JSON
{"version": 1, "officer": "$ME", $(gov 2026-0042),
 "case_alert": {"title": "Boat departure expected", "summary": "For the hub only.",
  "urgency": "IMMEDIATE", "entities": {
   "locations": [{"id": "l1", "name": "Tripoli", "country": "LY"},
                 {"id": "l2", "name": "Lampedusa", "country": "IT"}],
   "routes": [{"id": "r1", "legs": [{"from_ref": "l1", "to_ref": "l2", "transport_mode": "SEA"}]}]}}}
JSON
cat >"$NET/r2.json" <<JSON
{"version": 1, "officer": "$ME", $(gov ""),
 "route_intelligence": {"title": "Vienna transit", "modus_operandi": "Same passport reused",
  "entities": {
   "documents": [{"id": "d1", "type": "PASSPORT", "number": "BA 123 4567", "issuing_country": "AL"}],
   "locations": [{"id": "l1", "name": "Vienna", "country": "AT"},
                 {"id": "l2", "name": "Passau", "country": "DE"}],
   "routes": [{"id": "r1", "legs": [{"from_ref": "l1", "to_ref": "l2", "transport_mode": "RAIL"}]}]}}}
JSON

# ---- five messages, each waited for at the hub so that its delivery sequence is known
n=0
send() { # send NODE FILE WHERE...
  local node=$1 file=$2
  shift 2
  "$CLI" --socket "$(sock "$node")" send --json "$file" "$@" >/dev/null || return 1
  n=$((n + 1))
  wait_until 20 cursor_at_least eu-hub "$n"
}
check "fr-ncp: case alert on ch:case-one (hub seq 1)" send fr-ncp "$NET/a1.json" --channel ch:case-one
check "de-ncp: route intelligence on ch:routes (hub seq 2)" send de-ncp "$NET/r1.json" --channel ch:routes
check "de-ncp: case alert on ch:case-one (hub seq 3)" send de-ncp "$NET/a2.json" --channel ch:case-one
check "fr-ncp: direct case alert to the hub (hub seq 4)" send fr-ncp "$NET/d1.json" --to eu-hub
check "de-ncp: route intelligence on ch:routes (hub seq 5)" send de-ncp "$NET/r2.json" --channel ch:routes

# found ARGS...: the delivery sequences `liaison search --json ARGS` returns at the hub, "1,3"
found() {
  local out
  out=$("$CLI" --socket "$(sock eu-hub)" search --json "$@") || return 1
  { grep -o '^{"delivery_seq":[0-9]*' <<<"$out" || true; } | cut -d: -f2 | paste -sd, -
}
expect() { # expect WANT ARGS...
  local want=$1 got
  shift
  got=$(found "$@") || { not_ok "search $* failed"; return; }
  if [ "$got" = "$want" ]; then ok "search $* -> ${want:-nothing}"; else not_ok "search $* -> '$got' (want '$want')"; fi
}
expect "1,2,3,4,5"
expect "1,4" --case 2026-0042
expect "3" --case " 2026-0077 "
expect "1,3" --person hoxha
expect "1" --person "Dritan  HOXHA"
expect "1" --person "dritan the driver"
expect "3" --person "HOXHA Arben"
expect "2" --person "marta kovač"
expect "1,5" --document BA1234567
expect "3" --document "x-987-6543"
expect "1" --vehicle b123xy
expect "2" --vehicle "ZG 4471 KL"
expect "3" --vehicle "m ab 1234"
expect "2,5" --route AT
expect "2" --route munich
expect "4" --route Lampedusa
expect "1,2,3,4,5" --officer "$ME"
expect "1,4" --sender fr-ncp
expect "2,3,5" --sender de-ncp
expect "2,5" --channel ch:routes
expect "4" --direct
expect "3" --person hoxha --sender de-ncp
expect "5" --document ba1234567 --channel ch:routes
expect "4" --case 2026-0042 --route it
expect "" --person hox
expect "" --document BA123
expect "" --person hoxha --route lampedusa
# Paging.
expect "2,3" --max 2 --after 1
page=$("$CLI" --socket "$(sock eu-hub)" search --person hoxha --max 1)
check "a full page says how to go on" grep -q -- "--after 1" <<<"$page"
check "the table shows the case reference" grep -q "2026-0042" <<<"$page"

# Time: created_at_ms of seq 3 splits the five (each was created after the previous arrived).
t3=$("$CLI" --socket "$(sock eu-hub)" search --json --after 2 --max 1 |
  grep -o '"created_at_ms":[0-9]*' | cut -d: -f2)
since="$((t3 / 1000)).$(printf %03d $((t3 % 1000)))"
expect "3,4,5" --since "$since"
expect "1,2" --until "$since"
expect "3" --since "$since" --person hoxha
expect "1,2,3,4,5" --since 2020-01-01 --until 2199-12-31T23:59Z
expect "" --until 2020-01-01
check_fails "an empty time range is refused" "$CLI" --socket "$(sock eu-hub)" search --since 2026-02-01 --until 2026-01-01

# ---- export: JSON Lines that round-trip
check "export of everything" "$CLI" --socket "$(sock eu-hub)" export --out "$NET/all.jsonl"
check "the export file is private (0600)" test "$(stat -c %a "$NET/all.jsonl")" = 600
lines=$("$CHECK" "$NET/all.jsonl" "$NET/a1.json" "$NET/r1.json" "$NET/a2.json" "$NET/d1.json" "$NET/r2.json")
check "every exported payload parses back into exactly the payload sent (5 lines)" test "$lines" = 5
check "the export names sender, channel and officer" \
  grep -q "\"sender\":\"fr-ncp\".*\"channel\":\"ch:case-one\".*\"officer\":\"$ME\"" "$NET/all.jsonl"
check "a direct message has the empty channel" grep -q '"channel":"".*"Boat departure' "$NET/all.jsonl"
check "export with filters" "$CLI" --socket "$(sock eu-hub)" export --person Hoxha --out "$NET/hoxha.jsonl"
lines=$("$CHECK" "$NET/hoxha.jsonl" "$NET/a1.json" "$NET/a2.json")
check "the filtered export holds exactly the two messages naming Hoxha" test "$lines" = 2
"$CLI" --socket "$(sock eu-hub)" export --route at >"$NET/stdout.jsonl"
check "export to standard output" test "$("$CHECK" "$NET/stdout.jsonl" "$NET/r1.json" "$NET/r2.json")" = 2
rc=0
"$CLI" --socket "$(sock eu-hub)" export --out "$NET/all.jsonl" 2>"$NET/err" || rc=$?
check "an existing export is never overwritten (exit 73)" test "$rc" = 73
check "... and says so" grep -q "exists" "$NET/err"
check "the refused export left the old file intact" test "$("$CHECK" "$NET/all.jsonl")" = 5
# The CLI-side (`search --json`) and export formats are the same lines.
check "search --json prints export lines" \
  diff <("$CLI" --socket "$(sock eu-hub)" search --json --person hoxha) "$NET/hoxha.jsonl"

# ---- command lines refused before anything is asked (exit 64)
for args in "search --bogus" "search --since yesterday" "search --until 2026-13-01" \
  "search --max 0" "search --channel ch:routes --direct" "search --person ''" \
  "export --out ''" "search --case a --case b --case c --person d --person e --document f \
  --vehicle g --route h --officer i" "export extra"; do
  rc=0
  eval "\"\$CLI\" --socket \"$(sock eu-hub)\" $args" 2>/dev/null >/dev/null || rc=$?
  check "liaison $args: usage error" test "$rc" = 64
done
check "search --help" bash -c "\"\$0\" search --help >/dev/null" "$CLI"
check "export --help" bash -c "\"\$0\" export --help >/dev/null" "$CLI"

# ---- a node that is not a hub keeps no index and says so
rc=0
"$CLI" --socket "$(sock fr-ncp)" search --person hoxha 2>"$NET/err" || rc=$?
check "search at a contact point is refused (exit 78, EX_CONFIG)" test "$rc" = 78
check "... with a hint" grep -q "not a hub" "$NET/err"

# ---- at rest: no entity in clear in the hub's store, nor in any log
for f in "$NET/eu-hub/node.db" "$NET/eu-hub/node.db-wal" "$NET"/*/node.log "$NET/broker.log"; do
  [ -f "$f" ] || continue
  check "no entity in clear in ${f#$NET/}" bash -c "! grep -qai -e hoxha -e BA1234567 \
    -e ba1234567 -e 'B 123 XY' -e b123xy -e petrov -e X9876543 -e Lampedusa -e Nickelsdorf \
    -e 2026-0042 -e 2026-0077 -e 'ZG 4471' '$f'"
done

# ---- survives a restart; a contact point switched to `hub yes` indexes what it holds
stop_node eu-hub
start_node eu-hub
expect "1,3" --person hoxha
echo "hub yes" >>"$NET/de-ncp/node.conf"
stop_node de-ncp
start_node de-ncp
check "de-ncp indexed the message it stored before" \
  grep -q "hub: indexed 1 messages stored earlier" "$NET/de-ncp/node.log"
check "de-ncp finds it" test "$("$CLI" --socket "$(sock de-ncp)" search --json --person hoxha |
  grep -c '"sender":"fr-ncp"')" = 1

# ---- an export larger than one batch streams completely, in order
out=$("$LOAD" send --socket "$(sock fr-ncp)" --channel ch:routes --count 600)
check "fr-ncp: 600 more case alerts accepted" grep -q '"accepted":600' <<<"$out"
check "the hub stores them" wait_until 60 cursor_at_least eu-hub 605
check "export of 602 messages naming passport BA1234567" \
  "$CLI" --socket "$(sock eu-hub)" export --document BA1234567 --out "$NET/bulk.jsonl"
check "... all of them, in delivery order, each payload valid" \
  test "$("$CHECK" "$NET/bulk.jsonl" "$NET/a1.json" "$NET/r2.json")" = 602
expect "405" --case load-0000000399
finish
