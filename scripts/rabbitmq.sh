#!/usr/bin/env bash
# A local RabbitMQ broker for INT_L02 (orientation messages to regulation software) and its tests.
#
# Idempotent: does nothing when a broker already answers on 127.0.0.1:${SAS_RABBITMQ_PORT:-5672}.
# Otherwise installs Debian's rabbitmq-server when missing (apt-get update first; root or sudo needed
# only then), and starts one node as the `rabbitmq` system user, bound to the loopback interface only
# (AMQP, Erlang distribution and epmd), with its own configuration and data under
# ${SAS_RABBITMQ_HOME:-/var/lib/rabbitmq/sas}; then waits until the broker accepts AMQP connections.
#
#   scripts/rabbitmq.sh          start (or reuse) the broker
#   scripts/rabbitmq.sh stop     stop the node this script started
set -euo pipefail

PORT="${SAS_RABBITMQ_PORT:-5672}"
DIST_PORT="${SAS_RABBITMQ_DIST_PORT:-25672}"
HOME_DIR="${SAS_RABBITMQ_HOME:-/var/lib/rabbitmq/sas}"
NODENAME="${SAS_RABBITMQ_NODENAME:-sas@localhost}"
WAIT_S="${SAS_RABBITMQ_WAIT_S:-90}"

log() { echo "rabbitmq.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
        log "need root (or sudo) to run: $*"; exit 1; fi
}

# An AMQP 0-9-1 server answers the protocol header with its Connection.Start frame (type 1).
amqp_answers() {
    python3 - "$PORT" <<'EOF' 2>/dev/null
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        s.settimeout(3)
        frame = s.recv(7)
        sys.exit(0 if frame[:1] == b"\x01" else 1)
except OSError:
    sys.exit(1)
EOF
}

# Everything the node reads, pointing at our own folder, loopback only.
NODE_ENV=(
    "HOME=$HOME_DIR"
    "RABBITMQ_NODENAME=$NODENAME"
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
    "RABBITMQ_NODE_PORT=$PORT"
    "RABBITMQ_DIST_PORT=$DIST_PORT"
    "ERL_EPMD_ADDRESS=127.0.0.1"
    "RABBITMQ_CONFIG_FILE=$HOME_DIR/rabbitmq.conf"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$HOME_DIR/enabled_plugins"
    "RABBITMQ_MNESIA_BASE=$HOME_DIR/mnesia"
    "RABBITMQ_LOG_BASE=$HOME_DIR/log"
    "RABBITMQ_PID_FILE=$HOME_DIR/node.pid"
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
)

stop() {
    if [ -f "$HOME_DIR/node.pid" ]; then
        as_root env "${NODE_ENV[@]}" runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmqctl -n "$NODENAME" stop \
            || true
        log "stopped $NODENAME"
    else
        log "no node started by this script"
    fi
}

if [ "${1:-start}" = "stop" ]; then stop; exit 0; fi

if amqp_answers; then
    log "a broker already answers on 127.0.0.1:$PORT"
    exit 0
fi

if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    log "installing rabbitmq-server from Debian packages"
    as_root apt-get update -qq
    # policy-rc.d may forbid starting services in containers: we start the node ourselves below.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi

as_root mkdir -p "$HOME_DIR/log" "$HOME_DIR/mnesia"
as_root tee "$HOME_DIR/rabbitmq.conf" >/dev/null <<EOF
listeners.tcp.1 = 127.0.0.1:$PORT
loopback_users.guest = true
# A test broker on a small disk must not block publishers.
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
EOF
echo "[]." | as_root tee "$HOME_DIR/enabled_plugins" >/dev/null
if [ ! -f "$HOME_DIR/.erlang.cookie" ]; then
    python3 -c 'import secrets; print(secrets.token_hex(20).upper(), end="")' | as_root tee "$HOME_DIR/.erlang.cookie" >/dev/null
    as_root chmod 400 "$HOME_DIR/.erlang.cookie"
fi
as_root chown -R rabbitmq:rabbitmq "$HOME_DIR"

log "starting $NODENAME on 127.0.0.1:$PORT (logs in $HOME_DIR/log)"
as_root env "${NODE_ENV[@]}" setsid runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server \
    >"$HOME_DIR/log/startup.out" 2>&1 < /dev/null &

for _ in $(seq 1 "$WAIT_S"); do
    if amqp_answers; then
        log "ready on 127.0.0.1:$PORT"
        exit 0
    fi
    sleep 1
done
log "the broker did not answer within ${WAIT_S}s; see $HOME_DIR/log"
tail -n 30 "$HOME_DIR/log/startup.out" >&2 || true
exit 1
