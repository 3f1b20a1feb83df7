#!/usr/bin/env bash
# End-to-end test of liaison-keys: authority, two nodes, issue, verify, revoke, error paths.
# Expected exit codes are sysexits(3) values from lia_err_exit (lib/error.c).
set -euo pipefail

K="${LIA_BUILD_DIR:?LIA_BUILD_DIR not set}/keys/liaison-keys"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

EX_USAGE=64 EX_DATAERR=65 EX_NOPERM=77 EX_CANTCREAT=73
EX_UNAVAILABLE=69 EX_TEMPFAIL=75 EX_PROTOCOL=76
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }

# expect CODE NAME -- command...: runs the command, checks its exit status; output in $T/out, $T/err
expect() {
  local want=$1 name=$2 got=0
  shift 3
  "$@" >"$T/out" 2>"$T/err" || got=$?
  if [ "$got" -eq "$want" ]; then ok "$name"; else
    ko "$name: exit $got, expected $want"; sed 's/^/    /' "$T/err"; fi
}
# flip_byte FILE OFFSET: complements one byte, so the file always changes (overwriting it with
# a fixed value leaves it as it was when the byte already had that value: 1 run in 256).
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf %o $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# contains FILE TEXT NAME
contains() {
  if grep -qF -- "$2" "$1"; then ok "$3"; else ko "$3: '$2' not in output"; sed 's/^/    /' "$1"; fi
}
mode_is() {
  local m
  m=$(stat -c %a "$1")
  if [ "$m" = "$2" ]; then ok "mode of $1 is $2"; else ko "mode of $1 is $m, expected $2"; fi
}

printf 'correct horse battery staple\n' >pass
printf 'wrong\n' >badpass
now=$(date +%s)

expect 0 "authority-init" -- "$K" authority-init --name "Test Network Authority" --dir auth \
  --passphrase-file pass --kdf interactive
contains "$T/out" "fingerprint:" "authority-init prints the fingerprint"
mode_is auth/authority.key 600
mode_is auth/authority.pub 644
expect 0 "second authority" -- "$K" authority-init --name "Other" --dir other --no-passphrase \
  --kdf interactive
expect $EX_CANTCREAT "authority-init refuses to overwrite" -- "$K" authority-init --name X \
  --dir auth --no-passphrase
expect $EX_USAGE "authority-init without a passphrase source and no tty" -- \
  "$K" authority-init --name X --dir auth3 </dev/null

expect 0 "node-init fr" -- "$K" node-init --id fr-cp --role contact-point --country FR --dir fr
fpr_fr=$(sed -n 's/^fingerprint: //p' "$T/out")
expect 0 "node-init nl" -- "$K" node-init --id nl-hub --role hub --country NL --dir nl
mode_is fr/node.key 600
mode_is fr/node.req 644
expect $EX_USAGE "node-init with a bad role" -- "$K" node-init --id x --role boss --country FR \
  --dir x
expect $EX_USAGE "node-init with a bad node id" -- "$K" node-init --id "Bad Id" \
  --role hub --country FR --dir x
expect $EX_USAGE "unknown option" -- "$K" verify --bogus
expect 0 "--help" -- "$K" issue --help
contains "$T/out" "usage:" "--help prints the usage"

expect 0 "issue fr" -- "$K" issue --authority-dir auth --request fr/node.req --out fr/node.cert \
  --passphrase-file pass --days 30 --not-before $((now - 1000))
contains "$T/out" "$fpr_fr" "issue shows the request's fingerprint"
contains "$T/out" "serial:" "issue prints the serial"
mode_is fr/node.cert 644
expect 0 "issue nl" -- "$K" issue --authority-dir auth --request nl/node.req --out nl/node.cert \
  --passphrase-file pass
expect $EX_NOPERM "issue with a wrong passphrase" -- "$K" issue --authority-dir auth \
  --request nl/node.req --out nl/x.cert --passphrase-file badpass
contains "$T/err" "authority.key: wrong passphrase" "wrong passphrase message"
expect $EX_NOPERM "issue without a passphrase and no tty" -- "$K" issue --authority-dir auth \
  --request nl/node.req --out nl/x.cert </dev/null
contains "$T/err" "--passphrase-file" "asks for --passphrase-file"
[ ! -e nl/x.cert ] && ok "no certificate written after failures" || ko "x.cert written"

# A tampered request fails proof of possession.
cp fr/node.req bad.req
flip_byte bad.req 20
expect $EX_DATAERR "issue refuses a tampered request" -- "$K" issue --authority-dir auth \
  --request bad.req --out bad.cert --passphrase-file pass

expect 0 "verify fr" -- "$K" verify --authority auth/authority.pub --cert fr/node.cert
contains "$T/out" "fr-cp" "verify prints the node id"
expect 0 "verify --json" -- "$K" verify --authority auth/authority.pub --cert fr/node.cert --json
contains "$T/out" '"valid":true' "verify --json says valid"
expect $EX_PROTOCOL "verify against another authority" -- "$K" verify \
  --authority other/authority.pub --cert fr/node.cert
contains "$T/err" "different network authority" "wrong authority message"
expect $EX_TEMPFAIL "verify after expiry" -- "$K" verify --authority auth/authority.pub \
  --cert fr/node.cert --at $((now + 31 * 86400))
contains "$T/err" "certificate expired on" "expired message"
cp fr/node.cert bad.cert
flip_byte bad.cert $(($(stat -c %s bad.cert) - 3))
expect $EX_DATAERR "verify a tampered certificate" -- "$K" verify \
  --authority auth/authority.pub --cert bad.cert
contains "$T/err" "signature does not verify" "bad signature message"
head -c 7 fr/node.cert >trunc.cert
expect $EX_DATAERR "verify a truncated certificate" -- "$K" verify \
  --authority auth/authority.pub --cert trunc.cert

expect 0 "revoke fr" -- "$K" revoke --authority-dir auth --cert fr/node.cert --crl crl \
  --reason "key compromised" --passphrase-file pass --at $((now - 10))
mode_is crl 644
expect $EX_UNAVAILABLE "verify a revoked certificate" -- "$K" verify \
  --authority auth/authority.pub --cert fr/node.cert --crl crl
contains "$T/err" "revoked" "revoked message"
expect 0 "nl still valid with the list" -- "$K" verify --authority auth/authority.pub \
  --cert nl/node.cert --crl crl
expect 0 "fr valid before its revocation time" -- "$K" verify --authority auth/authority.pub \
  --cert fr/node.cert --crl crl --at $((now - 20))
expect $EX_CANTCREAT "revoke twice" -- "$K" revoke --authority-dir auth --cert fr/node.cert \
  --crl crl --passphrase-file pass
expect 0 "revoke nl" -- "$K" revoke --authority-dir auth --cert nl/node.cert --crl crl \
  --passphrase-file pass
contains "$T/out" "serial 2, 2 entries" "second list has serial 2 and both entries"
expect 0 "show crl --json" -- "$K" show crl --authority auth/authority.pub --json
contains "$T/out" '"reason":"key compromised"' "show lists the reason"
expect 0 "show authority.pub" -- "$K" show auth/authority.pub
contains "$T/out" "Test Network Authority" "show prints the authority name"
expect 0 "show cert" -- "$K" show fr/node.cert
contains "$T/out" "not verified" "show without --authority says not verified"

expect 0 "fingerprint req" -- "$K" fingerprint fr/node.req
req_fpr=$(cat "$T/out")
expect 0 "fingerprint cert" -- "$K" fingerprint fr/node.cert
[ "$(cat "$T/out")" = "$req_fpr" ] && [ "$req_fpr" = "$fpr_fr" ] &&
  ok "request and certificate have the node-init fingerprint" || ko "fingerprints differ"
expect $EX_DATAERR "fingerprint of garbage" -- "$K" fingerprint pass

chmod 644 auth/authority.key
expect $EX_NOPERM "world-readable key refused" -- "$K" issue --authority-dir auth \
  --request nl/node.req --out nl/y.cert --passphrase-file pass
contains "$T/err" "chmod 600" "permission message says how to fix"

echo "keys cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
