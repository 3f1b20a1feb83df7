#!/usr/bin/env bash
# Officer isolation at one node: two officers (two local uids) on fr-ncp, anna assigned to
# case:x only and bruno to case:y only. Through the control socket anna cannot list, show,
# follow or send on case:y, bruno sees case:y; the node administrator (root) assigns at run
# time, the assignment survives a restart, node.conf assignments cannot be removed at run time;
# an account that is no officer reads nothing; a message anna sends names her (not her account,
# not what her client claims) inside the signed payload at the receiving node.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (runs the CLI as other uids with setpriv)"; exit 0; }
command -v setpriv >/dev/null || { echo "1..0 # SKIP setpriv (util-linux) missing"; exit 0; }

# Officers as plain numeric uids (no passwd entries needed); a shared group gives them the
# control socket (a setgid directory: the socket inherits its group), as in a deployment.
UA=60501 UB=60502 UC=60503 GOFF=60500
ME=$(id -un)
OFFICERS="officer $ME $(id -u)
assign $ME *
officer anna $UA
officer bruno $UB
assign anna case:x
assign bruno case:y"
NODE_EXTRA="control-allow-uid $UC"

net_authority
net_identity broker broker EU
net_identity fr-ncp contact-point FR
net_identity de-ncp contact-point DE
start_broker
node_conf fr-ncp
mkdir -p "$NET/ctl-fr"
chgrp "$GOFF" "$NET/ctl-fr"
chmod 2750 "$NET/ctl-fr"
chmod 711 "$NET"
sed -i "s|^control .*|control $NET/ctl-fr/control.sock|" "$NET/fr-ncp/node.conf"
start_node fr-ncp
start_node de-ncp
FR="$NET/ctl-fr/control.sock"
# de-ncp owns the channels (fr-ncp's control socket is elsewhere in this test).
for ch in case:x case:y; do
  WAIT_FOR=de-ncp channel_create de-ncp "$ch" fr-ncp
  wait_until 20 "$CLI" --socket "$FR" channel members "$ch"
done
DE=$(sock de-ncp)

as() { # as UID CLI-ARGS...: runs the CLI as another account, member of the socket's group
  local uid=$1; shift
  setpriv --reuid="$uid" --regid="$uid" --groups="$GOFF" "$CLI" --socket "$FR" "$@"
}
# exit_is CODE COMMAND...: COMMAND exits with CODE (stdout and stderr kept in $NET/last.*)
exit_is() {
  local want=$1 rc=0; shift
  "$@" >"$NET/last.out" 2>"$NET/last.err" || rc=$?
  [ "$rc" = "$want" ] || { echo "  exit $rc, wanted $want: $(cat "$NET/last.err")"; return 1; }
}
count_json() { grep -c "$1" "$NET/last.out" || true; }
ALERT=(alert --case 2026-0042 --title "Van at the border" --summary "Twelve hidden in a van"
  --purpose "Preventing smuggling" --legal-basis "Directive (EU) 2023/977"
  --classification RESTRICTED --marking "RESTREINT UE/EU RESTRICTED" --subject SUSPECT)

# Messages from de-ncp: two on case:x, two on case:y, interleaved.
for ch in case:x case:y case:x case:y; do
  "$CLI" --socket "$DE" send "${ALERT[@]}" --channel "$ch" >/dev/null
done
fr_cursor_at_least() { # the control socket of fr-ncp is not where lib.sh looks for it
  local c
  c=$("$CLI" status --socket "$FR" 2>/dev/null | sed -n 's/^inbox cursor  *\([0-9]*\).*/\1/p')
  [ -n "$c" ] && [ "$c" -ge "$1" ]
}
check "fr-ncp stores the four messages" wait_until 20 fr_cursor_at_least 4

# Who is who.
check "anna: whoami names officer anna, not node administrator" \
  bash -c "setpriv --reuid=$UA --regid=$UA --groups=$GOFF '$CLI' --socket '$FR' --json whoami | grep -q '\"officer\":\"anna\",\"node_admin\":false,\"assignments\":\[\"case:x\"\]'"
exit_is 0 as "$UA" status
check "anna: status shows case:x and not case:y" \
  bash -c "grep -q '^channels  *case:x$' '$NET/last.out'"
exit_is 0 "$CLI" --socket "$FR" status
check "root: status shows both channels, node administrator" \
  bash -c "grep -q '^channels  *case:x case:y$' '$NET/last.out' && grep -q 'node administrator' '$NET/last.out'"

# Reading.
check "anna: inbox succeeds" exit_is 0 as "$UA" --json inbox
check "anna: inbox holds the two case:x messages only" \
  test "$(count_json '"channel":"case:x"')/$(count_json '"channel":"case:y"')" = 2/0
check "anna: inbox --channel case:y refused (77)" exit_is 77 as "$UA" inbox --channel case:y
check "  ...saying she is not assigned and how to fix it" \
  grep -q "officer anna is not assigned to channel case:y; ask the node administrator: liaison officer assign anna case:y" "$NET/last.err"
check "anna: follow --channel case:y refused (77)" exit_is 77 as "$UA" follow --channel case:y
check "anna: channel members case:x shown" exit_is 0 as "$UA" channel members case:x
check "anna: channel members case:y refused (77)" exit_is 77 as "$UA" channel members case:y
check "anna: channel history case:y refused (77)" exit_is 77 as "$UA" channel history case:y
check "anna: channel create refused where she is not assigned (77)" \
  exit_is 77 as "$UA" channel create case:z de-ncp
y_seq=$("$CLI" --socket "$FR" --json inbox --channel case:y | head -1 | grep -o '"delivery_seq":[0-9]*' | cut -d: -f2)
check "anna: show of a case:y message: not found (66)" exit_is 66 as "$UA" show "$y_seq"
check "root: show of the same message works" exit_is 0 "$CLI" --socket "$FR" show "$y_seq"
check "bruno: inbox holds the two case:y messages only" exit_is 0 as "$UB" --json inbox
check "  ...(2 case:y, 0 case:x)" \
  test "$(count_json '"channel":"case:y"')/$(count_json '"channel":"case:x"')" = 2/0

# Following everything: anna gets case:x only, also for what arrives while she follows.
as "$UA" --json follow >"$NET/anna.follow" 2>"$NET/anna.follow.err" &
FOLLOW_PID=$!
PIDS+=("$FOLLOW_PID")
check "anna: follow shows the two stored case:x messages" \
  wait_until 10 more_lines "$NET/anna.follow" '"channel":"case:x"' 1
"$CLI" --socket "$DE" send "${ALERT[@]}" --channel case:y >/dev/null
"$CLI" --socket "$DE" send "${ALERT[@]}" --channel case:x >/dev/null
# Delivered in order: once the later case:x message is shown, the case:y one was passed over.
check "anna: follow shows the new case:x message" \
  wait_until 20 more_lines "$NET/anna.follow" '"channel":"case:x"' 2
check_fails "anna: follow never showed a case:y message" grep -q '"channel":"case:y"' "$NET/anna.follow"
kill "$FOLLOW_PID" 2>/dev/null || true
wait "$FOLLOW_PID" 2>/dev/null || true

# Sending.
check "anna: send on case:y refused (77)" exit_is 77 as "$UA" send "${ALERT[@]}" --channel case:y
check "anna: direct send refused without @direct (77)" \
  exit_is 77 as "$UA" send "${ALERT[@]}" --to de-ncp
check "anna: send on case:x accepted (claiming another officer)" \
  exit_is 0 as "$UA" --json send "${ALERT[@]}" --channel case:x --officer someone-else
mid=$(grep -o '"message_id":"[0-9a-f]*"' "$NET/last.out" | head -1 | cut -d'"' -f4)
got_at_de() { "$CLI" --socket "$DE" --json inbox --max 10000 | grep -q "$mid"; }
check "de-ncp receives anna's message" wait_until 20 got_at_de
de_seq=$("$CLI" --socket "$DE" --json inbox --max 10000 | grep "$mid" | grep -o '"delivery_seq":[0-9]*' | cut -d: -f2)
"$CLI" --socket "$DE" --json show "$de_seq" >"$NET/shown.json"
check "at de-ncp the signed payload names officer anna" \
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['payload']['officer']=='anna', d['payload']['officer']; assert d['sender']=='fr-ncp'" "$NET/shown.json"
check "at de-ncp liaison show names officer anna" \
  bash -c "'$CLI' --socket '$DE' show '$de_seq' | grep -q '^officer  *anna$'"
check "at de-ncp liaison inbox names officer anna (sender fr-ncp)" \
  bash -c "'$CLI' --socket '$DE' inbox --after $((de_seq - 1)) --max 1 | grep -q '^ *$de_seq  .*  fr-ncp  *anna  *case:x '"

# An account admitted on the socket but not an officer reads nothing.
check "uid $UC (no officer): status works" exit_is 0 as "$UC" status
check "uid $UC (no officer): inbox refused (77)" exit_is 77 as "$UC" inbox
check "  ...saying it is not an officer" grep -q "is not an officer at this node" "$NET/last.err"

# Officer management.
check "anna: officer list shows only herself" exit_is 0 as "$UA" --json officer list
check "  ...(one line, anna)" bash -c "[ \$(wc -l <'$NET/last.out') = 1 ] && grep -q '\"id\":\"anna\"' '$NET/last.out'"
check "root: officer list shows the three officers" exit_is 0 "$CLI" --socket "$FR" --json officer list
check "  ...($ME, anna, bruno)" test "$(wc -l <"$NET/last.out")" = 3
check "anna may not assign herself (77)" exit_is 77 as "$UA" officer assign anna case:y
check "root assigns anna to case:y" exit_is 0 "$CLI" --socket "$FR" officer assign anna case:y
check "anna now reads case:y" exit_is 0 as "$UA" inbox --channel case:y
stop_node fr-ncp
start_node fr-ncp
check "after a restart anna still reads case:y (persisted)" exit_is 0 as "$UA" --json inbox --channel case:y
check "  ...its messages" test "$(count_json '"channel":"case:y"')" -ge 2
check "root: unassign anna case:y" exit_is 0 "$CLI" --socket "$FR" officer unassign anna case:y
check "anna no longer reads case:y (77)" exit_is 77 as "$UA" inbox --channel case:y
check "unassign of a node.conf assignment refused (78)" \
  exit_is 78 "$CLI" --socket "$FR" officer unassign anna case:x
check "  ...naming the configuration line" grep -q "node.conf:[0-9]* assigns officer anna to case:x" "$NET/last.err"
check "assign to an unknown officer: not found (66)" \
  exit_is 66 "$CLI" --socket "$FR" officer assign nobody case:x
check "root: assign anna @direct" exit_is 0 "$CLI" --socket "$FR" officer assign anna @direct
check "anna: direct send accepted now" exit_is 0 as "$UA" send "${ALERT[@]}" --to de-ncp
finish
