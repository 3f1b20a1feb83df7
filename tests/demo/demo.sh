#!/usr/bin/env bash
# The demonstration run by `./run demo`.
# Part 1: a network authority, two national contact points, a case alert sealed by one and
# opened by the other, what the broker sees of it, and tampering refused.
# Part 2: a broker and three nodes (two contact points and a hub) on 127.0.0.1; a case alert
# sent on a case channel arrives, verified and decrypted, at the others; clean shutdown.
# Everything happens in temporary directories that are removed at the end.
# Usage: tests/demo/demo.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build/release}
K="$BUILD/keys/liaison-keys"
E="$BUILD/tools/liaison-envelope"
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$D|\$DEMO|g; s|$BUILD/[a-z]*/||g"; "$@"; }

step "1. The network authority creates its key (kept offline, sealed with a passphrase)"
head -c 32 /dev/urandom | base64 >"$D/passphrase" # a real authority types a long passphrase
run "$K" authority-init --name "EU Liaison Network (demo)" --dir "$D/authority" \
  --passphrase-file "$D/passphrase" --kdf interactive

step "2. Two national contact points create their keys and certificate requests"
run "$K" node-init --id fr-ncp --role contact-point --country FR --dir "$D/fr"
run "$K" node-init --id de-ncp --role contact-point --country DE --dir "$D/de"

step "3. The authority certifies them (after comparing the fingerprints by telephone)"
run "$K" issue --authority-dir "$D/authority" --request "$D/fr/node.req" --out "$D/fr/node.cert" \
  --passphrase-file "$D/passphrase"
run "$K" issue --authority-dir "$D/authority" --request "$D/de/node.req" --out "$D/de/node.cert" \
  --passphrase-file "$D/passphrase"
run "$K" verify --authority "$D/authority/authority.pub" --cert "$D/de/node.cert"
ls -l "$D/fr" | sed "s|$D|\$DEMO|g"

step "4. France seals a case alert for Germany (signed by France, encrypted to Germany)"
run "$E" seal --key "$D/fr/node.key" --authority "$D/authority/authority.pub" \
  --to "$D/de/node.cert" --case 2026-0042 --officer j.martin --out "$D/alert.env"

step "5. What the broker sees: routing metadata only, the content is unreadable"
run "$E" inspect "$D/alert.env"

step "6. Germany verifies and decrypts it"
run "$E" open --key "$D/de/node.key" --authority "$D/authority/authority.pub" \
  --cert "$D/fr/node.cert" "$D/alert.env"

step "7. Tampering is refused: one byte of the ciphertext changed in transit"
cp "$D/alert.env" "$D/tampered.env"
size=$(stat -c %s "$D/tampered.env")
byte=$(od -An -tu1 -j $((size / 2)) -N1 "$D/tampered.env" | tr -d ' ') # complemented: always a change
printf "\\$(printf %o $((255 - byte)))" |
  dd of="$D/tampered.env" bs=1 seek=$((size / 2)) conv=notrunc status=none
if run "$E" open --key "$D/de/node.key" --authority "$D/authority/authority.pub" \
  --cert "$D/fr/node.cert" "$D/tampered.env"; then
  echo "demo: the tampered envelope was accepted" >&2
  exit 1
fi

step "8. France cannot read it back, nor can anyone it was not addressed to"
if run "$E" open --key "$D/fr/node.key" --authority "$D/authority/authority.pub" \
  --cert "$D/fr/node.cert" "$D/alert.env"; then
  echo "demo: a non-recipient opened the envelope" >&2
  exit 1
fi

printf '\nPart 1 complete: the authority, two identities, a case alert sealed and opened, tampering refused.\n'

# ---------------------------------------------------------------- part 2: the network
export LIA_BUILD_DIR="$BUILD"
source "$(dirname "$0")/../integration/lib.sh"
CLI="$BUILD/node/liaison"

step "9. A network on 127.0.0.1: authority, broker, two contact points (fr, de) and a hub"
net_authority
net_identity broker broker EU
net_identity fr-ncp contact-point FR
net_identity de-ncp contact-point DE
net_identity eu-hub hub EU
start_broker
for n in fr-ncp de-ncp eu-hub; do start_node "$n"; done
sed "s|$NET|\$NET|g" "$NET/broker.conf" | grep -v '^$'
run "$BUILD/broker/liaison-broker" -n -c "$NET/broker.conf"

step "10. France opens the case channel; it owns it and signs its membership (the hub is a member)"
run "$CLI" --socket "$(sock fr-ncp)" channel create case:2026-0042 de-ncp eu-hub --copy-to-hub \
  --description "Van smuggling route, Romania to Germany"
for n in de-ncp eu-hub; do wait_until 20 channel_at "$n" case:2026-0042 1; done
run "$CLI" --socket "$(sock de-ncp)" channel members case:2026-0042

step "11. Germany and the hub follow the case channel"
"$CLI" --socket "$(sock de-ncp)" follow --channel case:2026-0042 >"$NET/de.follow" 2>&1 &
PIDS+=($!)
"$CLI" --socket "$(sock eu-hub)" follow --channel case:2026-0042 >"$NET/hub.follow" 2>&1 &
PIDS+=($!)

step "12. France sends a case alert on the channel"
run "$CLI" --socket "$(sock fr-ncp)" send alert --channel case:2026-0042 --case 2026-0042 \
  --title "Van with smuggled migrants expected at the German border" \
  --summary "Romanian-registered van, driver holds an Albanian passport; about twelve migrants." \
  --urgency PRIORITY --purpose "Preventing and combating migrant smuggling" \
  --legal-basis "Directive (EU) 2023/977" --classification RESTRICTED \
  --marking "RESTREINT UE/EU RESTRICTED" --handling H2 --reliability B --accuracy 2 \
  --tlp AMBER --subject SUSPECT

step "13. It arrives, verified and decrypted, at Germany and at the hub"
wait_until 20 grep -q "2026-0042" "$NET/de.follow"
wait_until 20 grep -q "2026-0042" "$NET/hub.follow"
echo "--- de-ncp:"; cat "$NET/de.follow"
echo "--- eu-hub:"; cat "$NET/hub.follow"
run "$CLI" --socket "$(sock fr-ncp)" status

step "14. Clean shutdown: every daemon finishes its work, commits and exits 0"
for n in fr-ncp de-ncp eu-hub; do kill -TERM "$(node_pid "$n")"; done
kill -TERM "$BROKER_PID"
for p in "$(node_pid fr-ncp)" "$(node_pid de-ncp)" "$(node_pid eu-hub)" "$BROKER_PID"; do
  wait "$p" || { echo "demo: a daemon did not exit cleanly" >&2; exit 1; }
done
grep -E "stopping:|pages written" "$NET/broker.log" | tail -n 2

printf '\nDemo complete: a case alert travelled from fr-ncp through the broker to de-ncp and eu-hub.\n'
