#!/usr/bin/env bash
# The demonstration run by `./run demo`: a network authority, two national contact points,
# a case alert sealed by one and opened by the other, what the broker sees of it, and
# tampering refused. Everything happens in a temporary directory that is removed at the end.
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
printf '\x5a' | dd of="$D/tampered.env" bs=1 seek=$((size / 2)) conv=notrunc status=none
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

printf '\nDemo complete: the authority, two identities, a case alert sealed and opened, tampering refused.\n'
