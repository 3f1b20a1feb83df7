#!/usr/bin/env bash
# The README main command's demonstration must keep working: run it against this build and
# check that each claim it makes is backed by the output.
set -euo pipefail
out=$(bash "$LIA_SOURCE_DIR/tests/demo/demo.sh" "$LIA_BUILD_DIR" 2>&1)
pass=0 fail=0
check() {
  if grep -qF -- "$1" <<<"$out"; then pass=$((pass + 1)); else
    fail=$((fail + 1))
    echo "missing from the demo output: $1"
  fi
}
check 'VERIFIED and decrypted at de-ncp'
check 'case_reference: "2026-0042"'
check 'REFUSED: signature does not verify'
check 'REFUSED: this node is not a recipient of the message'
check 'content unreadable'
check 'Part 1 complete'
check 'accepted (in the durable outbox'
check 'from fr-ncp  channel case:2026-0042'
check 'stopping: everything received was committed'
check 'Demo complete: a case alert travelled from fr-ncp through the broker to de-ncp and eu-hub.'
echo "demo: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
