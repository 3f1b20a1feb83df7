#!/usr/bin/env bash
# The sending node is killed with SIGKILL again and again while it sends, and restarted: what
# carries messages across its deaths is its outbox (one batch row per group, acknowledgements
# in part kept as bits). Each life of fr-ncp gets a fresh range of message numbers. Every
# message the sender's API reported as accepted arrives at de-ncp exactly once and in order; a
# message that was in flight when the node died (never reported accepted) arrives at most once.
source "$(dirname "$0")/lib.sh"

SEG=1500                       # messages offered to each life of the sending node
RATE=${CRASH_RATE:-1500}       # messages per second offered (pacing the scenario)
KILLS=${CRASH_KILLS:-10}
PAUSES=(0.1 0.3 0.5 0.8 0.05) # before each kill: varies the moment, waits for no result

net_up fr-ncp de-ncp

for k in $(seq 0 "$KILLS"); do
  "$LOAD" send --socket "$(sock fr-ncp)" --to de-ncp --count "$SEG" --start $((k * SEG)) \
    --rate "$RATE" --connect-timeout-ms 10000 >"$NET/send-$k.json" 2>/dev/null &
  pid=$!
  if [ "$k" -lt "$KILLS" ]; then
    sleep "${PAUSES[$((k % ${#PAUSES[@]}))]}" # pacing: vary the moment of the kill
    stop_node fr-ncp KILL
    wait "$pid" || true # its connection died with the node
    start_node fr-ncp || { not_ok "fr-ncp restart $((k + 1))"; break; }
  else
    wait "$pid" || true
  fi
done

# What each life reported accepted: the first "accepted" numbers of its range, in order.
accepted=()
total=0
for k in $(seq 0 "$KILLS"); do
  a=$(sed -n 's/.*"accepted":\([0-9]*\).*/\1/p' "$NET/send-$k.json")
  accepted+=("${a:-0}")
  total=$((total + ${a:-0}))
done
echo "# accepted per life of fr-ncp: ${accepted[*]} (total $total)"
check "the last life of fr-ncp had all $SEG accepted" test "${accepted[$KILLS]}" -eq "$SEG"
check "fr-ncp's outbox drains after its crashes" wait_until 60 outbox_drained fr-ncp
check "de-ncp stored at least every accepted message" wait_until 60 cursor_at_least de-ncp "$total"

# Every stored message, in delivery order (pages of at most 10,000).
after=0
: >"$NET/inbox.jsonl"
while :; do
  "$CLI" --socket "$(sock de-ncp)" inbox --json --max 10000 --after "$after" >"$NET/page.jsonl"
  [ -s "$NET/page.jsonl" ] || break
  cat "$NET/page.jsonl" >>"$NET/inbox.jsonl"
  after=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])['delivery_seq'])" "$NET/page.jsonl")
done

check "every accepted message arrived once, in order; nothing arrived twice" \
  python3 - "$NET/inbox.jsonl" "$SEG" "${accepted[@]}" <<'PY'
import json, sys
path, seg, accepted = sys.argv[1], int(sys.argv[2]), [int(a) for a in sys.argv[3:]]
seen, prev = set(), -1
for line in open(path):
    ref = json.loads(line)["payload"]["governance"]["case_reference"]
    n = int(ref.split("-")[1])
    if n <= prev:
        sys.exit(f"message {n} after {prev}: out of order or twice")
    seen.add(n)
    prev = n
missing = [k * seg + i for k, a in enumerate(accepted) for i in range(a) if k * seg + i not in seen]
if missing:
    sys.exit(f"{len(missing)} accepted messages missing, first {missing[:5]}")
extra = len(seen) - sum(accepted)
print(f"# {len(seen)} delivered: {sum(accepted)} accepted, {extra} in flight at a crash")
PY
finish
