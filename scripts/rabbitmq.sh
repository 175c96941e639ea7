#!/usr/bin/env bash
# A local RabbitMQ broker for INT_L02 (orientation messages to regulation software) and its tests.
#
# One node, two listeners on the loopback interface: plain AMQP on ${SAS_RABBITMQ_PORT:-5672} (local
# tests with guest) and AMQPS on ${SAS_RABBITMQ_TLS_PORT:-5671}, which plays the Hub Santé's: TLS with a
# client certificate required (verify_peer, fail_if_no_peer_cert) and SASL EXTERNAL (plugin
# rabbitmq_auth_mechanism_ssl, user = the certificate's CN), the Hub's vhost, and users holding the
# Hub's permissions (each client may configure/read its own `{clientId}.*` queues and write to the
# exchange with its own id as the only routing key; a `hub.dispatcher` user plays the Hub's dispatcher).
#
# A test PKI is made once under $HOME_DIR/tls: ca.pem, server.pem/.key (CN localhost, SAN 127.0.0.1),
# and clients/<CN>.pem/.key for the platform (${SAS_RABBITMQ_HUB_CLIENT:-fr.health.test.ptfsas}), the
# regulation software peers (${SAS_RABBITMQ_HUB_PEERS:-fr.health.samu330}) and hub.dispatcher. Tests
# read them there (throwaway test keys, world-readable on purpose; the CA and server keys are not).
#
# Idempotent: when both listeners answer, only the users and permissions are (re)applied. When only the
# plain one answers and the node is the one this script started (an older configuration without TLS),
# it is restarted with the new configuration; a foreign broker there is an error. Otherwise installs
# Debian's rabbitmq-server when missing (apt-get update first; root or sudo needed only then), and
# starts one node as the `rabbitmq` system user, bound to the loopback interface only (AMQP, Erlang
# distribution and epmd), with its own configuration and data under
# ${SAS_RABBITMQ_HOME:-/var/lib/rabbitmq/sas}; then waits until both listeners accept AMQP connections.
#
#   scripts/rabbitmq.sh          start (or reuse) the broker
#   scripts/rabbitmq.sh stop     stop the node this script started
set -euo pipefail

PORT="${SAS_RABBITMQ_PORT:-5672}"
TLS_PORT="${SAS_RABBITMQ_TLS_PORT:-5671}"
DIST_PORT="${SAS_RABBITMQ_DIST_PORT:-25672}"
HOME_DIR="${SAS_RABBITMQ_HOME:-/var/lib/rabbitmq/sas}"
NODENAME="${SAS_RABBITMQ_NODENAME:-sas@localhost}"
WAIT_S="${SAS_RABBITMQ_WAIT_S:-90}"
HUB_VHOST="${SAS_RABBITMQ_HUB_VHOST:-15-15_v2.0}"
HUB_EXCHANGE="${SAS_RABBITMQ_HUB_EXCHANGE:-hubsante}"
HUB_CLIENT="${SAS_RABBITMQ_HUB_CLIENT:-fr.health.test.ptfsas}"
HUB_PEERS="${SAS_RABBITMQ_HUB_PEERS:-fr.health.samu330}"
HUB_DISPATCHER="hub.dispatcher"
TLS_DIR="$HOME_DIR/tls"

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

# The same through TLS, presenting the platform's client certificate (the listener refuses handshakes
# without one) and checking the broker against our CA.
tls_answers() {
    [ -f "$TLS_DIR/clients/$HUB_CLIENT.pem" ] || return 1
    python3 - "$TLS_PORT" "$TLS_DIR" "$HUB_CLIENT" <<'EOF' 2>/dev/null
import socket, ssl, sys
port, tls, client = int(sys.argv[1]), sys.argv[2], sys.argv[3]
try:
    context = ssl.create_default_context(cafile=f"{tls}/ca.pem")
    context.load_cert_chain(f"{tls}/clients/{client}.pem", f"{tls}/clients/{client}.key")
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            s.settimeout(3)
            frame = s.recv(7)
            sys.exit(0 if frame[:1] == b"\x01" else 1)
except (OSError, ssl.SSLError):
    sys.exit(1)
EOF
}

# The test PKI, made once: a CA, the broker's certificate, one client certificate per CN.
make_pki() {
    as_root mkdir -p "$TLS_DIR/clients"
    if [ ! -f "$TLS_DIR/ca.pem" ] || [ ! -f "$TLS_DIR/server.pem" ]; then
        log "creating a test CA and the broker's certificate in $TLS_DIR"
        as_root openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=SAS test Hub CA" \
            -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" 2>/dev/null
        as_root openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
            -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
            | as_root tee "$TLS_DIR/server.ext" >/dev/null
        as_root openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -days 3650 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.pem" 2>/dev/null
        as_root rm -f "$TLS_DIR"/clients/*.pem
    fi
    printf 'extendedKeyUsage=clientAuth\n' | as_root tee "$TLS_DIR/clients/client.ext" >/dev/null
    local cn
    for cn in "$HUB_CLIENT" $HUB_PEERS "$HUB_DISPATCHER"; do
        [ -f "$TLS_DIR/clients/$cn.pem" ] && continue
        as_root openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" \
            -keyout "$TLS_DIR/clients/$cn.key" -out "$TLS_DIR/clients/$cn.csr" 2>/dev/null
        as_root openssl x509 -req -in "$TLS_DIR/clients/$cn.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -days 3650 -extfile "$TLS_DIR/clients/client.ext" -out "$TLS_DIR/clients/$cn.pem" \
            2>/dev/null
    done
    # Test keys only: readable by whoever runs the tests.
    as_root chmod 755 "$TLS_DIR" "$TLS_DIR/clients"
    as_root chmod 644 "$TLS_DIR"/clients/*.pem "$TLS_DIR"/clients/*.key "$TLS_DIR/ca.pem"
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

ctl() { as_root env "${NODE_ENV[@]}" runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$NODENAME" "$@"; }

# The Hub's model: one vhost; per client, configure/read its own `{clientId}.*` queues and write to
# the exchange, with its own id as the only routing key it may publish with (topic permission).
provision() {
    ctl list_vhosts | grep -qxF "$HUB_VHOST" || ctl add_vhost "$HUB_VHOST" >/dev/null
    local users user quoted
    users="$(ctl list_users | awk '{print $1}')"
    for user in "$HUB_CLIENT" $HUB_PEERS "$HUB_DISPATCHER"; do
        if ! grep -qxF "$user" <<<"$users"; then
            # EXTERNAL users have no password: a random one is set, then cleared.
            ctl add_user "$user" "$(python3 -c 'import secrets; print(secrets.token_hex(16))')" >/dev/null
            ctl clear_password "$user" >/dev/null
        fi
    done
    for user in "$HUB_CLIENT" $HUB_PEERS; do
        quoted="${user//./\\.}"
        ctl set_permissions -p "$HUB_VHOST" "$user" "^$quoted\\..*" "^$HUB_EXCHANGE\$" "^$quoted\\..*" >/dev/null
        ctl set_topic_permissions -p "$HUB_VHOST" "$user" "$HUB_EXCHANGE" "^$quoted\$" "^\$" >/dev/null
    done
    ctl set_permissions -p "$HUB_VHOST" "$HUB_DISPATCHER" ".*" ".*" ".*" >/dev/null
}

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

if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    log "installing rabbitmq-server from Debian packages"
    as_root apt-get update -qq
    # policy-rc.d may forbid starting services in containers: we start the node ourselves below.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi
command -v openssl >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null

make_pki

if amqp_answers; then
    if tls_answers; then
        log "a broker already answers on 127.0.0.1:$PORT and (TLS) 127.0.0.1:$TLS_PORT"
        provision
        exit 0
    fi
    if [ -f "$HOME_DIR/node.pid" ] && ctl status >/dev/null 2>&1; then
        log "our node answers on $PORT without TLS on $TLS_PORT: restarting it with the TLS listener"
        stop
        for _ in $(seq 1 "$WAIT_S"); do amqp_answers || break; sleep 1; done
    else
        log "a broker not started by this script answers on 127.0.0.1:$PORT without TLS on $TLS_PORT;"
        log "stop it, or choose other ports (SAS_RABBITMQ_PORT, SAS_RABBITMQ_TLS_PORT)"
        exit 1
    fi
fi

as_root mkdir -p "$HOME_DIR/log" "$HOME_DIR/mnesia"
as_root tee "$HOME_DIR/rabbitmq.conf" >/dev/null <<EOF
listeners.tcp.1 = 127.0.0.1:$PORT
listeners.ssl.1 = 127.0.0.1:$TLS_PORT
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
# EXTERNAL: the user is the client certificate's CN, as the Hub Santé identifies its clients.
# PLAIN/AMQPLAIN stay for guest on the plain listener (other local tests): RabbitMQ's mechanism list
# is per node, not per listener; guest is loopback-only and has no permission on the Hub's vhost.
auth_mechanisms.1 = EXTERNAL
auth_mechanisms.2 = PLAIN
auth_mechanisms.3 = AMQPLAIN
ssl_cert_login_from = common_name
loopback_users.guest = true
# A test broker on a small disk must not block publishers.
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
EOF
echo "[rabbitmq_auth_mechanism_ssl]." | as_root tee "$HOME_DIR/enabled_plugins" >/dev/null
if [ ! -f "$HOME_DIR/.erlang.cookie" ]; then
    python3 -c 'import secrets; print(secrets.token_hex(20).upper(), end="")' | as_root tee "$HOME_DIR/.erlang.cookie" >/dev/null
    as_root chmod 400 "$HOME_DIR/.erlang.cookie"
fi
as_root chown -R rabbitmq:rabbitmq "$HOME_DIR"
as_root chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key"

log "starting $NODENAME on 127.0.0.1:$PORT and (TLS) 127.0.0.1:$TLS_PORT (logs in $HOME_DIR/log)"
as_root env "${NODE_ENV[@]}" setsid runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server \
    >"$HOME_DIR/log/startup.out" 2>&1 < /dev/null &

for _ in $(seq 1 "$WAIT_S"); do
    if amqp_answers && tls_answers; then
        provision
        log "ready on 127.0.0.1:$PORT and (TLS) 127.0.0.1:$TLS_PORT"
        exit 0
    fi
    sleep 1
done
log "the broker did not answer within ${WAIT_S}s; see $HOME_DIR/log"
tail -n 30 "$HOME_DIR/log/startup.out" >&2 || true
exit 1
