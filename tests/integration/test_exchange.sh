#!/usr/bin/env bash
# Send and receive on a channel and directly, through a real broker and real nodes on
# 127.0.0.1: every message arrives once, in order, at every entitled node and nowhere else;
# no plaintext reaches the broker's store or log.
source "$(dirname "$0")/lib.sh"

net_up fr-ncp de-ncp nl-ncp it-ncp
check "fr-ncp creates case:2026-0042 and every member knows it" \
  channel_create fr-ncp case:2026-0042 de-ncp nl-ncp

out=$("$LOAD" send --socket "$(sock fr-ncp)" --channel case:2026-0042 --count 200)
check "fr-ncp: 200 case alerts accepted into the outbox" grep -q '"accepted":200' <<<"$out"
check "de-ncp receives all 200 once, in order" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel case:2026-0042 --count 200 --timeout-ms 20000
check "nl-ncp receives all 200 once, in order" \
  "$LOAD" recv --socket "$(sock nl-ncp)" --channel case:2026-0042 --count 200 --timeout-ms 20000

"$LOAD" send --socket "$(sock fr-ncp)" --to de-ncp --count 5 --start 1000 >/dev/null
check "a direct message reaches its recipient" \
  "$LOAD" recv --socket "$(sock de-ncp)" --count 5 --start 1000 --after 200 --timeout-ms 20000
check_fails "nl-ncp gets nothing it is not entitled to" \
  "$LOAD" recv --socket "$(sock nl-ncp)" --count 1 --start 1000 --after 200 --timeout-ms 1000
nl=$("$LOAD" recv --socket "$(sock nl-ncp)" --count 201 --timeout-ms 1000 || true)
check "nl-ncp holds exactly the 200 channel messages" grep -q '"received":200,' <<<"$nl"
it=$("$LOAD" recv --socket "$(sock it-ncp)" --count 1 --timeout-ms 1000 || true)
check "it-ncp (not a member) holds nothing" grep -q '"received":0,' <<<"$it"

# What arrives equals what was sent: the payload the CLI built (dry run) and the payload the
# receiving node verified and decrypted, compared as the same canonical JSON; also an analysis
# share with an attachment (bytes, digest).
printf 'route photo \x00\x01\x02 bytes\n' >"$NET/photo.jpg"
before=$("$LOAD" recv --socket "$(sock de-ncp)" --count 100000 --timeout-ms 500 || true)
seen=$(grep -o '"received":[0-9]*' <<<"$before" | cut -d: -f2)
A=(alert --channel case:2026-0042 --case 2026-0042 --title "Van expected at the border"
  --summary "Twelve migrants hidden in a van; driver known" --purpose "Preventing smuggling"
  --legal-basis "Directive (EU) 2023/977" --classification RESTRICTED
  --marking "RESTREINT UE/EU RESTRICTED" --handling H1 --reliability B --accuracy 2 --tlp AMBER
  --subject SUSPECT --officer "$(id -un)")
Z=(analysis --channel case:2026-0042 --case 2026-0042 --title "Route analysis"
  --summary "Two legs, one vehicle" --attach "$NET/photo.jpg" --purpose "Preventing smuggling"
  --legal-basis "Directive (EU) 2023/977" --classification RESTRICTED
  --marking "RESTREINT UE/EU RESTRICTED" --subject SUSPECT --officer "$(id -un)")
for kind in A Z; do
  declare -n args=$kind
  want=$("$CLI" --json send "${args[@]}" --dry-run)
  sent=$("$CLI" --socket "$(sock fr-ncp)" --json send "${args[@]}")
  seen=$((seen + 1))
  wait_until 20 "$CLI" --socket "$(sock de-ncp)" show "$seen"
  show=$("$CLI" --socket "$(sock de-ncp)" --json show "$seen")
  got=${show#*\"payload\":}
  got=${got%\}}
  check "$kind: the payload at de-ncp equals the payload sent" test "$got" = "$want"
  id=$(grep -o '"message_id":"[0-9a-f]*"' <<<"$sent" | head -1)
  check "$kind: same message id at both ends" grep -qF "$id" <<<"$show"
done

# The example alert names a suspect; neither the store nor the log may contain it.
for f in "$NET/broker/broker.db" "$NET/broker/broker.db-wal" "$NET/broker.log"; do
  [ -f "$f" ] || continue
  check "no plaintext in $(basename "$f")" bash -c "! grep -qa -e HOXHA -e 'Van transporting' -e 'Twelve migrants hidden' -e 'route photo' '$f'"
done
finish
