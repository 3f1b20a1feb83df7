#!/usr/bin/env bash
# Send and receive on a channel and directly, through a real broker and real nodes on
# 127.0.0.1: every message arrives once, in order, at every entitled node and nowhere else;
# no plaintext reaches the broker's store or log.
source "$(dirname "$0")/lib.sh"

CHANNELS="channel case:2026-0042 fr-ncp de-ncp nl-ncp"
net_up fr-ncp de-ncp nl-ncp it-ncp

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

# The example alert names a suspect; neither the store nor the log may contain it.
for f in "$NET/broker/broker.db" "$NET/broker/broker.db-wal" "$NET/broker.log"; do
  [ -f "$f" ] || continue
  check "no plaintext in $(basename "$f")" bash -c "! grep -qa -e HOXHA -e 'Van transporting' '$f'"
done
finish
