# Shared helpers for the integration tests: a network of real processes on 127.0.0.1 in a
# temporary directory (authority, broker, nodes), and waiting on conditions with timeouts.
# Source it from a test; set LIA_BUILD_DIR to the build tree. Every process started here is
# killed when the test exits.

set -euo pipefail
B=${LIA_BUILD_DIR:?set LIA_BUILD_DIR}
KEYS="$B/keys/liaison-keys"
BROKER="$B/broker/liaison-broker"
NODE="$B/node/liaison-node"
CLI="$B/node/liaison"
LOAD="$B/bench/liaison-load"
NET=$(mktemp -d "${TMPDIR:-/tmp}/liaison-net.XXXXXX")
PIDS=()
# Heap the daemons touch at start (memory-reserve). Their 48M default costs about 0.2 s per
# start on the test VM (a page fault costs 14.5 us there), and the tests start daemons hundreds
# of times; the benchmarks set the default.
MEMORY_RESERVE=${MEMORY_RESERVE:-4M}
PASSED=0
FAILED=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP_NET:-0}" = 1 ]; then echo "network kept in $NET"; else rm -rf "$NET"; fi
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}
check_fails() { # check_fails DESCRIPTION COMMAND...: COMMAND must fail
  local d=$1; shift
  if "$@"; then not_ok "$d"; else ok "$d"; fi
}
finish() {
  echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# wait_until SECONDS COMMAND...: polls COMMAND every 20 ms until it succeeds or time runs out.
wait_until() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.02 # polling interval of a bounded wait, not a guess at how long something takes
  done
}

# more_lines FILE PATTERN N: FILE has more than N lines matching PATTERN (for wait_until, which
# runs its command again on every poll: a $(...) in its arguments would be expanded only once).
more_lines() { [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -gt "$3" ]; }

# The authority (passphrase in a file, fast KDF: tests only).
net_authority() {
  head -c 32 /dev/urandom | base64 >"$NET/pass"
  "$KEYS" authority-init --name "Test Network" --dir "$NET/authority" \
    --passphrase-file "$NET/pass" --kdf interactive >/dev/null
  mkdir -p "$NET/certs"
}

# net_identity ID ROLE COUNTRY [DAYS]: keys and certificate for a node or the broker.
net_identity() {
  local id=$1 role=$2 cc=$3 days=${4:-30}
  "$KEYS" node-init --id "$id" --role "$role" --country "$cc" --dir "$NET/$id" >/dev/null
  "$KEYS" issue --authority-dir "$NET/authority" --request "$NET/$id/node.req" \
    --out "$NET/$id/node.cert" --passphrase-file "$NET/pass" --days "$days" >/dev/null
  [ "$role" = broker ] || cp "$NET/$id/node.cert" "$NET/certs/$id.cert"
}

# OFFICERS holds the nodes' officer lines: by default the account running the tests is an
# officer (named after the account) assigned to everything, since reading and sending through
# the control socket requires an officer (docs/operator-guide.md, "Officers").
OFFICERS="officer $(id -un) $(id -u)
assign $(id -un) *"

broker_conf() {
  cat >"$NET/broker.conf" <<CONF
listen tcp://127.0.0.1:*
identity $NET/broker/node.key
authority $NET/authority/authority.pub
certs $NET/certs
store $NET/broker/broker.db
heartbeat-ms 200
heartbeat-timeout-ms 2000
memory-reserve $MEMORY_RESERVE
${BROKER_EXTRA:-}
CONF
  [ ! -f "$NET/crl" ] || echo "crl $NET/crl" >>"$NET/broker.conf"
}

# start_broker: starts (or restarts) the broker; sets BROKER_PID and BROKER_EP.
start_broker() {
  broker_conf
  "$BROKER" -c "$NET/broker.conf" 2>>"$NET/broker.log" &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  local before=${BROKER_EP:-}
  wait_until 10 grep -q "listening on" "$NET/broker.log" || { cat "$NET/broker.log"; return 1; }
  # The first start picks a free port; restarts reuse it so nodes reconnect.
  if [ -z "$before" ]; then
    BROKER_EP=$(grep -o 'listening on tcp://[0-9.:]*' "$NET/broker.log" | tail -1 | sed 's/listening on //')
    sed -i "s|^listen .*|listen $BROKER_EP|" "$NET/broker.conf"
  fi
}

restart_broker() {
  local lines
  lines=$(grep -c "listening on" "$NET/broker.log" || true)
  "$BROKER" -c "$NET/broker.conf" 2>>"$NET/broker.log" &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  wait_until 10 more_lines "$NET/broker.log" "listening on" "$lines" || { cat "$NET/broker.log"; return 1; }
}

node_conf() { # node_conf ID
  local id=$1
  cat >"$NET/$id/node.conf" <<CONF
identity $NET/$id/node.key
authority $NET/authority/authority.pub
certs $NET/certs
broker $BROKER_EP
broker-cert $NET/broker/node.cert
store $NET/$id/node.db
control $NET/$id/control.sock
heartbeat-ms 200
heartbeat-timeout-ms 2000
resend-ms ${RESEND_MS:-500}
memory-reserve $MEMORY_RESERVE
${NODE_EXTRA:-}
$OFFICERS
CONF
  [ ! -f "$NET/crl" ] || echo "crl $NET/crl" >>"$NET/$id/node.conf"
}

# start_node ID: starts (or restarts) the node daemon; its pid is in NODE_PID_<ID with - as _>.
# Waits for the daemon's start line (it listens on the control socket by then): after a
# SIGKILL a stale socket file remains, so the file's presence proves nothing.
start_node() {
  local id=$1 var lines
  [ -f "$NET/$id/node.conf" ] || node_conf "$id"
  lines=$(grep -c "node $id: broker" "$NET/$id/node.log" 2>/dev/null || true)
  "$NODE" -c "$NET/$id/node.conf" 2>>"$NET/$id/node.log" &
  var="NODE_PID_${id//[-.]/_}"
  printf -v "$var" '%s' $!
  PIDS+=($!)
  wait_until 10 more_lines "$NET/$id/node.log" "node $id: broker" "${lines:-0}" ||
    { cat "$NET/$id/node.log"; return 1; }
}

node_pid() { local var="NODE_PID_${1//[-.]/_}"; echo "${!var}"; }

# syncgate_preload PROGRAM: the LD_PRELOAD value that gives PROGRAM the fsync shim
# (tests/integration/syncgate.c). A sanitizer build needs its runtime first among them.
syncgate_preload() {
  local shim="$B/tests/libsyncgate.so" asan
  [ -f "$shim" ] || { echo "missing $shim" >&2; return 1; }
  asan=$(ldd "$1" | awk '/libasan/ {print $3}')
  echo "${asan:+$asan }$shim"
}

# stop_node ID [SIGNAL]: signals the node daemon (TERM by default) and waits until it exited.
stop_node() {
  local pid
  pid=$(node_pid "$1")
  kill -"${2:-TERM}" "$pid" 2>/dev/null || true
  { wait "$pid"; } 2>/dev/null || true
}

# kill_broker [SIGNAL]: signals the broker (KILL by default) and waits until it exited.
kill_broker() {
  kill -"${1:-KILL}" "$BROKER_PID" 2>/dev/null || true
  { wait "$BROKER_PID"; } 2>/dev/null || true
}

# node_status ID FIELD: one line of `liaison status` (e.g. "inbox cursor", "outbox pending").
node_status() {
  "$CLI" status --socket "$(sock "$1")" 2>/dev/null | sed -n "s/^$2  *\([0-9]*\).*/\1/p"
}
# Conditions for wait_until: the node's outbox is empty (the broker acknowledged everything);
# the node's inbox cursor is at least N.
outbox_drained() { [ "$(node_status "$1" "outbox pending")" = 0 ]; }
cursor_at_least() { local c; c=$(node_status "$1" "inbox cursor"); [ -n "$c" ] && [ "$c" -ge "$2" ]; }

sock() { echo "$NET/$1/control.sock"; }

# A standard network: authority, broker, and the given nodes (contact points by default).
net_up() {
  net_authority
  net_identity broker broker EU
  local id
  for id in "$@"; do net_identity "$id" contact-point "$(tr a-z A-Z <<<"${id:0:2}")"; done
  start_broker
  for id in "$@"; do start_node "$id"; done
}

# channel_serial ID CHANNEL: the serial of the last membership change node ID applied to
# CHANNEL (empty if the node does not know the channel).
channel_serial() {
  "$CLI" --socket "$(sock "$1")" channel members "$2" 2>/dev/null | sed -n 's/^last change  *\([0-9]*\).*/\1/p'
}
# channel_at ID CHANNEL SERIAL: node ID applied CHANNEL's changes up to SERIAL (for wait_until).
channel_at() { local s; s=$(channel_serial "$1" "$2"); [ -n "$s" ] && [ "$s" -ge "$3" ]; }
# channel_members_of ID CHANNEL: the member list node ID holds for CHANNEL, on one line.
channel_members_of() {
  "$CLI" --socket "$(sock "$1")" channel members "$2" 2>/dev/null | sed -n 's/^members  *//p'
}

# channel_create OWNER CHANNEL MEMBER... [--copy-to-hub]: OWNER (a running contact point)
# creates CHANNEL with these members (and itself) through `liaison channel create`, then waits
# until every member (or those named in WAIT_FOR) shows it with `liaison channel members`.
channel_create() {
  local owner=$1 ch=$2 id; shift 2
  "$CLI" --socket "$(sock "$owner")" channel create "$ch" "$@" >/dev/null || return 1
  for id in ${WAIT_FOR:-$owner "$@"}; do
    [ "${id#--}" = "$id" ] || continue # an option (--copy-to-hub), not a member
    wait_until 20 channel_at "$id" "$ch" 1 || { echo "$id does not know $ch" >&2; return 1; }
  done
}

# channel_change OWNER add|remove|transfer CHANNEL NODE WAITERS...: one change by OWNER, then
# waits until OWNER and every node in WAITERS applied it.
channel_change() {
  local owner=$1 op=$2 ch=$3 node=$4 id serial; shift 4
  "$CLI" --socket "$(sock "$owner")" channel "$op" "$ch" "$node" >/dev/null || return 1
  serial=$(channel_serial "$owner" "$ch")
  for id in "$@"; do
    wait_until 20 channel_at "$id" "$ch" "$serial" || { echo "$id did not apply $op $node" >&2; return 1; }
  done
}
