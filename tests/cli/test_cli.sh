#!/usr/bin/env bash
# The operator CLI without a daemon: help of every subcommand, usage errors (64), an unreachable
# daemon (69, with a message saying how to fix it), and payload construction via --dry-run.
set -uo pipefail
L="${LIA_BUILD_DIR:?}/node/liaison"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0 n=0

ok() { n=$((n + 1)); }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }

# expect CODE DESCRIPTION -- command...: runs it, stdout in $work/out, stderr in $work/err.
expect() {
    local want=$1 what=$2 got
    shift 3
    "$@" >"$work/out" 2>"$work/err"
    got=$?
    if [ "$got" -eq "$want" ]; then ok; else
        bad "$what: exit $got, wanted $want"; sed 's/^/  | /' "$work/err" >&2; fi
}
has() { # has FILE TEXT DESCRIPTION
    if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(basename "$1")"; sed 's/^/  | /' "$1" >&2; fi
}
# jq-free JSON field check with python3 (json.loads on one line of output).
json_eq() { # json_eq EXPR VALUE DESCRIPTION   (EXPR evaluated on d = parsed $work/out)
    local got
    got=$(python3 -c "import json,sys; d=json.load(open('$work/out')); print($1)" 2>&1)
    if [ "$got" = "$2" ]; then ok; else bad "$3: $1 = '$got', wanted '$2'"; fi
}

unset LIAISON_SOCKET
GOV=(--purpose "Preventing migrant smuggling" --legal-basis "Art. 6 Dir. (EU) 2023/977"
     --classification RESTRICTED --marking "RESTREINT UE/EU RESTRICTED")

# --- help
expect 0 "liaison --help" -- "$L" --help; has "$work/out" "usage: liaison" "main help"
expect 0 "liaison help" -- "$L" help
for c in "send" "send alert" "send route" "send analysis" follow inbox show status officer "officer list" whoami; do
    # shellcheck disable=SC2086
    expect 0 "$c --help" -- "$L" $c --help
    has "$work/out" "usage: liaison $c" "$c --help"
done
expect 0 "send --help mentions --dry-run" -- "$L" send alert --help
has "$work/out" "--dry-run" "send alert --help documents --dry-run"
expect 0 "--version" -- "$L" --version
for c in channel "channel create" "channel add" "channel remove" "channel transfer" "channel members" "channel history"; do
    # shellcheck disable=SC2086
    expect 0 "$c --help" -- "$L" $c --help
    has "$work/out" "usage: liaison channel" "$c --help"
done

# --- usage errors
expect 64 "no command" -- "$L"
expect 64 "unknown command" -- "$L" frobnicate; has "$work/err" "unknown command 'frobnicate'" "unknown command"
expect 64 "unknown global option" -- "$L" --frob status
expect 64 "unknown send kind" -- "$L" send memo
expect 64 "unknown option" -- "$L" inbox --bogus; has "$work/err" "unknown option --bogus" "inbox --bogus"
expect 64 "missing value" -- "$L" inbox --after; has "$work/err" "needs a value" "inbox --after"
expect 64 "bad --after" -- "$L" inbox --after x
expect 64 "bad --max" -- "$L" inbox --max 0
expect 64 "show without SEQ" -- "$L" show
expect 64 "show bad SEQ" -- "$L" show abc
expect 64 "status extra arg" -- "$L" status now
expect 64 "officer without action" -- "$L" officer; has "$work/err" "list, assign or unassign" "officer actions"
expect 64 "officer unknown action" -- "$L" officer fire anna
expect 64 "officer assign without channel" -- "$L" officer assign anna
expect 64 "officer list extra arg" -- "$L" officer list anna
expect 64 "whoami extra arg" -- "$L" whoami now
expect 64 "send alert without destination" -- "$L" send alert --case C --title T --summary S "${GOV[@]}"
has "$work/err" "--channel C or --to NODE" "destination hint"
expect 64 "send alert --channel and --to" -- "$L" send alert --channel a --to b --case C --title T --summary S "${GOV[@]}"
expect 64 "send alert without --title" -- "$L" send alert --dry-run --case C --summary S "${GOV[@]}"
has "$work/err" "--title is required" "title required"
expect 64 "send alert without --purpose" -- "$L" send alert --dry-run --case C --title T --summary S --legal-basis L --classification UNCLASSIFIED
expect 64 "send alert bad --handling" -- "$L" send alert --dry-run --case C --title T --summary S "${GOV[@]}" --handling H7
has "$work/err" "--handling: unknown value 'H7' (one of: H0, H1, H2, H3)" "handling values listed"
expect 64 "send alert bad --tlp" -- "$L" send alert --dry-run --case C --title T --summary S "${GOV[@]}" --tlp PURPLE
expect 64 "send alert bad --accuracy" -- "$L" send alert --dry-run --case C --title T --summary S "${GOV[@]}" --accuracy 5
expect 64 "send alert bad date" -- "$L" send alert --dry-run --case C --title T --summary S "${GOV[@]}" --review-date 2025-02-30
expect 64 "H3 without conditions" -- "$L" send alert --dry-run --case C --title T --summary S "${GOV[@]}" --handling H3
expect 64 "send route without --leg" -- "$L" send route --dry-run --title T --summary S --mode ROAD "${GOV[@]}"
expect 64 "send route bad --leg" -- "$L" send route --dry-run --title T --summary S --mode ROAD --leg "Paris" "${GOV[@]}"
expect 64 "send route bad leg time" -- "$L" send route --dry-run --title T --summary S --mode ROAD --leg "A>B@yesterday" "${GOV[@]}"
expect 64 "--attach outside analysis" -- "$L" send alert --dry-run --case C --title T --summary S "${GOV[@]}" --attach /etc/hostname
expect 64 "send without kind or --json" -- "$L" send --channel c
expect 64 "channel without a command" -- "$L" channel
expect 64 "channel unknown command" -- "$L" channel rename c d; has "$work/err" "unknown command 'rename'" "channel rename"
expect 64 "channel add without a node" -- "$L" channel add case:1; has "$work/err" "expected CHANNEL NODE" "channel add usage"
expect 64 "channel members without a channel" -- "$L" channel members; has "$work/err" "a channel name is needed" "channel name needed"
expect 64 "channel members extra arg" -- "$L" channel members case:1 de-ncp
expect 64 "--copy-to-hub outside create" -- "$L" channel add case:1 de-ncp --copy-to-hub
expect 64 "channel create --description without value" -- "$L" channel create case:1 --description
expect 69 "channel members, no daemon" -- "$L" --socket "$work/none.sock" channel members case:1

# --- an unreachable daemon: 69 (EX_UNAVAILABLE) and a message that says how to fix it
expect 69 "status, no daemon" -- "$L" --socket "$work/none.sock" status
has "$work/err" "cannot reach the node daemon at $work/none.sock: No such file or directory; is liaison-node running? (--socket or \$LIAISON_SOCKET)" "unreachable message"
LIAISON_SOCKET="$work/env.sock" expect 69 "inbox, \$LIAISON_SOCKET" -- env LIAISON_SOCKET="$work/env.sock" "$L" inbox
has "$work/err" "$work/env.sock" "LIAISON_SOCKET used"
expect 69 "follow, no daemon" -- "$L" follow --socket "$work/none.sock"
expect 69 "send, no daemon" -- "$L" send alert --socket "$work/none.sock" --channel op --case C --title T --summary S "${GOV[@]}"
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$work/stale.sock"
expect 69 "stale socket (connection refused)" -- "$L" --socket "$work/stale.sock" status
has "$work/err" "Connection refused" "refused message"

# --- payload construction (--dry-run --json prints the Payload without connecting)
expect 0 "alert dry run" -- "$L" send alert --dry-run --json --socket "$work/none.sock" --channel op-tidewater \
    --case FR-2024-0042 --title "Van heading to the border" --summary "Seen near Menton" "${GOV[@]}" \
    --handling H1 --reliability b --accuracy 2 --tlp AMBER+STRICT --data-basis FACT --subject SUSPECT \
    --language fr --review-date 2025-01-31 --offence 0902 --urgency IMMEDIATE --officer "officer-17"
json_eq "d['version']" 1 "version"
json_eq "d['officer']" officer-17 "officer"
json_eq "d['governance']['handling_code']" HANDLING_CODE_H1 "handling"
json_eq "d['governance']['source_reliability']" SOURCE_RELIABILITY_B "reliability"
json_eq "d['governance']['information_accuracy']" INFORMATION_ACCURACY_2 "accuracy"
json_eq "d['governance']['tlp']" TLP_AMBER_STRICT "tlp"
json_eq "d['governance']['classification_level']" CLASSIFICATION_LEVEL_RESTRICTED "classification"
json_eq "d['governance']['classification_marking']" "RESTREINT UE/EU RESTRICTED" "marking"
json_eq "d['governance']['case_reference']" FR-2024-0042 "case"
json_eq "d['governance']['review_at']" 1738281600 "review date"
json_eq "d['governance']['data_subject_categories']" "['DATA_SUBJECT_CATEGORY_SUSPECT']" "subjects"
json_eq "d['governance']['language']" fr "language"
json_eq "d['case_alert']['title']" "Van heading to the border" "title"
json_eq "d['case_alert']['urgency']" ALERT_URGENCY_IMMEDIATE "urgency"
json_eq "d['case_alert']['offence_codes']" "['0902']" "offences"
json_eq "len(d)" 4 "exactly version, officer, governance, body"
[ "$(wc -l <"$work/out")" -eq 1 ] && ok || bad "dry run --json is one line"

expect 0 "alert defaults" -- "$L" send alert --dry-run --json --case C --title T --summary S "${GOV[@]}"
json_eq "d['governance']['handling_code']" HANDLING_CODE_H2 "default handling"
json_eq "d['governance']['source_reliability']" SOURCE_RELIABILITY_X "default reliability"
json_eq "d['governance']['information_accuracy']" INFORMATION_ACCURACY_4 "default accuracy"
json_eq "d['governance']['data_basis']" DATA_BASIS_ASSESSMENT "default data basis"
json_eq "d['governance']['language']" en "default language"
json_eq "d['officer']" "$(id -un)" "default officer"

expect 0 "route dry run" -- "$L" send route --dry-run --json --title "Central Med" --summary "Rubber boats" \
    "${GOV[@]}" --mode SEA --leg "Tripoli>Lampedusa@2024-05-01T22:00Z/2024-05-02T06:00:30Z" --leg "Lampedusa>Agrigento@2024-05-03"
json_eq "[l['name'] for l in d['route_intelligence']['entities']['locations']]" "['Tripoli', 'Lampedusa', 'Agrigento']" "locations"
json_eq "[(l['from_ref'],l['to_ref']) for l in d['route_intelligence']['entities']['routes'][0]['legs']]" "[('loc1', 'loc2'), ('loc2', 'loc3')]" "legs"
json_eq "d['route_intelligence']['entities']['routes'][0]['legs'][0]['departure']" 1714600800 "departure"
json_eq "d['route_intelligence']['entities']['routes'][0]['legs'][0]['arrival']" 1714629630 "arrival"
json_eq "d['route_intelligence']['entities']['routes'][0]['legs'][1]['transport_mode']" TRANSPORT_MODE_SEA "mode"
json_eq "d['route_intelligence']['modus_operandi']" "Rubber boats" "modus operandi"

printf 'col1,col2\n1,2\n' >"$work/hits.csv"
head -c 3000 /dev/urandom >"$work/photo.JPG"
expect 0 "analysis dry run" -- "$L" send analysis --dry-run --json --case C --title T --summary S "${GOV[@]}" \
    --attach "$work/hits.csv" --attach "$work/photo.JPG"
json_eq "[a['name'] for a in d['analysis_share']['attachments']]" "['hits.csv', 'photo.JPG']" "attachment names"
json_eq "[a['media_type'] for a in d['analysis_share']['attachments']]" "['text/csv', 'image/jpeg']" "media types"
json_eq "__import__('base64').b64decode(d['analysis_share']['attachments'][0]['content']).decode()" "$(printf 'col1,col2\n1,2')" "content"
want=$(python3 -c "import hashlib,sys; print(hashlib.blake2b(open(sys.argv[1],'rb').read(), digest_size=32).hexdigest())" "$work/photo.JPG")
json_eq "__import__('base64').b64decode(d['analysis_share']['attachments'][1]['digest']).hex()" "$want" "BLAKE2b-256 digest"
expect 66 "missing attachment" -- "$L" send analysis --dry-run --case C --title T --summary S "${GOV[@]}" --attach "$work/nope.pdf"
has "$work/err" "cannot open $work/nope.pdf" "missing attachment message"
expect 64 "duplicate attachment names" -- "$L" send analysis --dry-run --case C --title T --summary S "${GOV[@]}" --attach "$work/hits.csv" --attach "$work/hits.csv"

# send --json FILE: the payload from JSON, short enum forms accepted, printed canonically
cat >"$work/p.json" <<'JSON'
{"version": 1, "officer": "me",
 "governance": {"handling_code": "h0", "source_reliability": "A", "information_accuracy": "1",
                "classification_level": "UNCLASSIFIED", "purpose": "p", "legal_basis": "l",
                "data_basis": "FACT", "language": "en", "case_reference": "X-1"},
 "case_alert": {"title": "t", "summary": "s", "urgency": "PRIORITY"}}
JSON
expect 0 "send --json FILE dry run" -- "$L" --json send --json "$work/p.json" --dry-run
json_eq "d['governance']['handling_code']" HANDLING_CODE_H0 "short form H0"
json_eq "d['case_alert']['urgency']" ALERT_URGENCY_PRIORITY "urgency from JSON"
expect 0 "send --json - (stdin)" -- bash -c "\"$L\" --json send --json - --dry-run <\"$work/p.json\""
sed 's/"h0"/"H7"/' "$work/p.json" >"$work/bad.json"
expect 65 "send --json with a bad enum" -- "$L" send --json "$work/bad.json" --dry-run
has "$work/err" "governance.handling_code: unknown value 'H7'" "JSON path in the error"
echo '{"version": 1, "nope": 2}' >"$work/bad2.json"
expect 65 "send --json with an unknown key" -- "$L" send --json "$work/bad2.json" --dry-run
has "$work/err" "nope: unknown field for liaison.v1.Payload" "unknown key error"
echo '{"version": ' >"$work/bad3.json"
expect 65 "send --json with broken JSON" -- "$L" send --json "$work/bad3.json" --dry-run
expect 66 "send --json missing file" -- "$L" send --json "$work/absent.json" --dry-run
expect 69 "send --json, no daemon" -- "$L" send --json "$work/p.json" --channel op --socket "$work/none.sock"

echo "cli: $((n - fails)) of $n checks passed"
[ "$fails" -eq 0 ]
