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

# CHANNELS holds "channel NAME MEMBERS..." lines shared by the broker and the nodes.
CHANNELS=""

broker_conf() {
  cat >"$NET/broker.conf" <<CONF
listen tcp://127.0.0.1:*
identity $NET/broker/node.key
authority $NET/authority/authority.pub
certs $NET/certs
store $NET/broker/broker.db
heartbeat-ms 200
heartbeat-timeout-ms 2000
${BROKER_EXTRA:-}
$CHANNELS
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
  wait_until 10 test "$(grep -c "listening on" "$NET/broker.log")" -gt "$lines"
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
resend-ms 500
${NODE_EXTRA:-}
$CHANNELS
CONF
  [ ! -f "$NET/crl" ] || echo "crl $NET/crl" >>"$NET/$id/node.conf"
}

# start_node ID: starts the node daemon; its pid is in NODE_PID_<ID with - as _>.
start_node() {
  local id=$1 var
  [ -f "$NET/$id/node.conf" ] || node_conf "$id"
  "$NODE" -c "$NET/$id/node.conf" 2>>"$NET/$id/node.log" &
  var="NODE_PID_${id//[-.]/_}"
  printf -v "$var" '%s' $!
  PIDS+=($!)
  wait_until 10 test -S "$NET/$id/control.sock" || { cat "$NET/$id/node.log"; return 1; }
}

node_pid() { local var="NODE_PID_${1//[-.]/_}"; echo "${!var}"; }

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
