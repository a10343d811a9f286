#!/usr/bin/env bash
# Two Tessera identity-domain nodes on one PostgreSQL database and one Redis, as in production:
# the same issuer, secret key, database and Redis; a data directory of their own each.
#
#   examples/two_nodes/run.sh           start both nodes, print what to try, stop them on Ctrl-C
#   examples/two_nodes/run.sh --check   start both, run a short self-check, stop them; exit 0/1
#
# The self-check: a client_credentials token issued by node A is active when introspected on
# node B; revoked on node B, it is inactive when introspected on node A.
#
# Environment (all optional):
#   PGURL              PostgreSQL server, without a database name
#                      (default postgresql://postgres@127.0.0.1:5432)
#   PG_MAINTENANCE_DB  the database to connect to for CREATE DATABASE (default postgres)
#   DB_NAME            the database of the two nodes, created when missing
#                      (default tessera_two_nodes)
#   REDIS_URL          default redis://127.0.0.1:6379/0
#   REDIS_PREFIX       key prefix in Redis (default: DB_NAME)
#   PORT_A, PORT_B     default 8100 and 8101; the issuer is http://127.0.0.1:PORT_A
#   ISSUER             override the issuer (default http://127.0.0.1:PORT_A)
#   WORK_DIR           data directories, logs, the generated secret key (default var/two_nodes)
#   TESSERA_SECRET_KEY the key-encryption key; default: generated once into WORK_DIR/secret.key
#   TESSERA            the tessera command (default .venv/bin/tessera)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHECK=0
case "${1:-}" in
    --check) CHECK=1 ;;
    "") ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

TESSERA="${TESSERA:-$ROOT/.venv/bin/tessera}"
PGURL="${PGURL:-postgresql://postgres@127.0.0.1:5432}"
PGURL="${PGURL%/}"
PG_MAINTENANCE_DB="${PG_MAINTENANCE_DB:-postgres}"
DB_NAME="${DB_NAME:-tessera_two_nodes}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
REDIS_PREFIX="${REDIS_PREFIX:-$DB_NAME}"
PORT_A="${PORT_A:-8100}"
PORT_B="${PORT_B:-8101}"
ISSUER="${ISSUER:-http://127.0.0.1:$PORT_A}"
WORK_DIR="${WORK_DIR:-$ROOT/var/two_nodes}"
URL_A="http://127.0.0.1:$PORT_A"
URL_B="http://127.0.0.1:$PORT_B"

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ -x "$TESSERA" ]] || die "$TESSERA not found: run 'make run' or 'make test' once to create .venv, or set TESSERA"
PYTHON="$(dirname "$TESSERA")/python"
[[ -x "$PYTHON" ]] || PYTHON=python3
command -v psql >/dev/null || die "psql is needed to create the database (apt-get install postgresql-client)"
command -v curl >/dev/null || die "curl is needed"
[[ "$DB_NAME" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "DB_NAME must be a plain lower-case identifier"

# --- PostgreSQL and Redis ------------------------------------------------------------------------

psql "$PGURL/$PG_MAINTENANCE_DB" -qtAc 'SELECT 1' >/dev/null 2>&1 \
    || die "PostgreSQL is not reachable at $PGURL/$PG_MAINTENANCE_DB"
"$PYTHON" -c 'import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()' \
    "$REDIS_URL" 2>/dev/null || die "Redis is not reachable at $REDIS_URL"

if [[ "$(psql "$PGURL/$PG_MAINTENANCE_DB" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
    psql "$PGURL/$PG_MAINTENANCE_DB" -qc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
    say "Created database $DB_NAME"
fi

mkdir -p "$WORK_DIR/a" "$WORK_DIR/b"
KEY_HINT="TESSERA_SECRET_KEY=<yours>"
if [[ -z "${TESSERA_SECRET_KEY:-}" ]]; then
    # Both nodes need the same key: it decrypts the signing keys and keys the client-secret hashes.
    if [[ ! -s "$WORK_DIR/secret.key" ]]; then
        (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' > "$WORK_DIR/secret.key")
    fi
    TESSERA_SECRET_KEY="$(cat "$WORK_DIR/secret.key")"
    KEY_HINT="TESSERA_SECRET_KEY_FILE=$WORK_DIR/secret.key"
fi

# What every node shares. Only TESSERA_DATA_DIR differs between them.
export TESSERA_ISSUER="$ISSUER"
export TESSERA_SECRET_KEY
export TESSERA_DATABASE_URL="$PGURL/$DB_NAME"
export TESSERA_REDIS_URL="$REDIS_URL"
export TESSERA_REDIS_PREFIX="$REDIS_PREFIX"

# Migrations run once, before any node starts (idempotent; a node on PostgreSQL never migrates).
TESSERA_DATA_DIR="$WORK_DIR/a" "$TESSERA" migrate

# --- the nodes -----------------------------------------------------------------------------------

PIDS=()
stop_nodes() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_nodes EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_node() {  # name port
    local name="$1" port="$2" log="$WORK_DIR/$1/node.log" deadline pid
    port_busy "$port" && die "port $port is in use (set PORT_A / PORT_B)"
    TESSERA_DATA_DIR="$WORK_DIR/$name" "$TESSERA" serve --demo --host 127.0.0.1 --port "$port" \
        >"$log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/health/ready" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2
            die "node $name exited; its log is $log"
        fi
        ((SECONDS < deadline)) || { tail -n 30 "$log" >&2; die "node $name did not become ready"; }
        sleep 0.2
    done
    say "Node $name ready on http://127.0.0.1:$port (log: $log)"
}

# Node A first: on an empty domain it bootstraps the demo (--demo, loopback) and writes the
# credentials to its data directory. Node B starts once A is ready and finds the domain there.
start_node a "$PORT_A"
start_node b "$PORT_B"

CREDS="$WORK_DIR/a/demo-credentials.json"
[[ -s "$CREDS" ]] || die "no $CREDS: database $DB_NAME was bootstrapped by an earlier run with \
another WORK_DIR; start over with: psql $PGURL/$PG_MAINTENANCE_DB -c 'DROP DATABASE \"$DB_NAME\"'"
cred() { "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$CREDS" "$1"; }
CLIENT_ID="$(cred confidential_app.client_id)"
CLIENT_SECRET="$(cred confidential_app.client_secret)"
SCOPE="$(cred resource.scope)"
json_field() {  # a field of the JSON document on stdin; empty when it is not JSON
    "$PYTHON" -c 'import json, sys
try:
    print(json.load(sys.stdin).get(sys.argv[1]))
except ValueError:
    print("")' "$1"
}

if ((CHECK == 0)); then
    cat <<EOF

Two nodes of one identity domain (issuer $ISSUER), sharing database $DB_NAME and Redis:
  node A  $URL_A
  node B  $URL_B
A load balancer would spread requests over both; here you call each one directly.
Demo credentials: $CREDS

Try it:
  # a token from node A
  TOKEN=\$(curl -s -u $CLIENT_ID:$CLIENT_SECRET -d grant_type=client_credentials \\
      -d scope=$SCOPE $URL_A/oauth2/v1/token \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  # node B knows it
  curl -s -u $CLIENT_ID:$CLIENT_SECRET -d "token=\$TOKEN" $URL_B/oauth2/v1/introspect
  # revoke on node B, then node A says inactive
  curl -s -u $CLIENT_ID:$CLIENT_SECRET -d "token=\$TOKEN" $URL_B/oauth2/v1/revoke
  curl -s -u $CLIENT_ID:$CLIENT_SECRET -d "token=\$TOKEN" $URL_A/oauth2/v1/introspect
  # the admin CLI works on the shared database too
  TESSERA_DATABASE_URL=$TESSERA_DATABASE_URL $KEY_HINT \\
      $TESSERA admin users list

Ctrl-C stops both nodes.
EOF
    # Until Ctrl-C, or until a node dies.
    set +e
    wait -n "${PIDS[@]}"
    say "a node stopped; see $WORK_DIR/a/node.log and $WORK_DIR/b/node.log" >&2
    exit 1
fi

# --- --check -------------------------------------------------------------------------------------

FAILED=0
check() {  # description, expected, actual
    if [[ "$2" == "$3" ]]; then
        say "ok    $1"
    else
        say "FAIL  $1: expected $2, got $3"
        FAILED=1
    fi
}

check "node B's discovery names the shared issuer" "$ISSUER" \
    "$(curl -fsS "$URL_B/.well-known/openid-configuration" | json_field issuer)"

TOKEN="$(curl -sS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    --data-urlencode "scope=$SCOPE" "$URL_A/oauth2/v1/token" | json_field access_token)"
if [[ -z "$TOKEN" || "$TOKEN" == None ]]; then
    say "FAIL  node A issued no client_credentials token"
    exit 1
fi
say "ok    node A issued a client_credentials token"

introspect() {  # node URL
    curl -sS -u "$CLIENT_ID:$CLIENT_SECRET" --data-urlencode "token=$TOKEN" \
        "$1/oauth2/v1/introspect" | json_field active
}
check "node B introspects node A's token as active" True "$(introspect "$URL_B")"
check "node B revokes it" 200 "$(curl -sS -o /dev/null -w '%{http_code}' \
    -u "$CLIENT_ID:$CLIENT_SECRET" --data-urlencode "token=$TOKEN" "$URL_B/oauth2/v1/revoke")"
check "node A introspects it as inactive" False "$(introspect "$URL_A")"

if ((FAILED)); then
    say "two_nodes --check: FAILED (logs: $WORK_DIR/a/node.log, $WORK_DIR/b/node.log)"
    exit 1
fi
say "two_nodes --check: passed"
