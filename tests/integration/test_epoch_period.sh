#!/usr/bin/env bash
# Key epochs roll with time (key-epoch-period-s): the first message a sender seals after the
# period has elapsed starts a new epoch, handed only to the destination's current members,
# and the members read on without a gap.
source "$(dirname "$0")/lib.sh"

NODE_EXTRA="key-epoch-period-s 1"
net_up fr-ncp de-ncp
check "fr-ncp creates case:period and de-ncp knows it" channel_create fr-ncp case:period de-ncp

"$LOAD" send --socket "$(sock fr-ncp)" --channel case:period --count 3 >/dev/null
check "de-ncp reads the first epoch" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel case:period --count 3 --timeout-ms 20000
sent_ms=$(date +%s%3N)
check_fails "no period has elapsed yet: no new epoch for a destination" \
  grep -q "key-epoch-period elapsed" "$NET/fr-ncp/node.log"

# The period is a duration of the clock: wait until it has passed, then send again.
period_passed() { [ $(($(date +%s%3N) - sent_ms)) -gt 1100 ]; }
wait_until 5 period_passed
"$LOAD" send --socket "$(sock fr-ncp)" --channel case:period --count 3 --start 3 >/dev/null
check "fr-ncp started a new key epoch because the period elapsed" \
  grep -q "started for a destination (key-epoch-period elapsed)" \
  "$NET/fr-ncp/node.log"
check "de-ncp reads on in the new epoch, once and in order" \
  "$LOAD" recv --socket "$(sock de-ncp)" --channel case:period --count 3 --start 3 --after 3 \
  --timeout-ms 20000

finish
