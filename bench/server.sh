# Sourced by bench/run and bench/order-start-up: a Latchkey server of a release build on a
# fresh database in a temporary directory (SQLite, or a throwaway PostgreSQL cluster), started
# and stopped from the shell. Expects LATCHKEY (the binary) to be set before `start_server`.

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SERVER_PID=
PG_DIR=
WORK=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  if [[ -n $PG_DIR ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# prepare_server sqlite|postgres: the work directory, the server's environment and its
# database; sets WORK and BASE.
prepare_server() {
  WORK=$(mktemp -d /tmp/latchkey-bench.XXXXXX)
  local port
  port=$(free_port)
  BASE=http://127.0.0.1:$port
  export LATCHKEY_BIND=127.0.0.1:$port
  export LATCHKEY_ISSUER=$BASE
  export LATCHKEY_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
  export LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD=bench-admin-password
  export LATCHKEY_LOG_LEVEL=warn
  export LATCHKEY_MAIL_DIR=$WORK/mail
  # The benchmark measures the server, not its rate limits (which only cover /api/v1 anyway).
  export LATCHKEY_RATE_LIMITS__ENABLED=false

  if [[ $1 == postgres ]]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    PG_DIR=$(mktemp -d /tmp/latchkey-bench-pg.XXXXXX)
    local pg_port
    pg_port=$(free_port)
    [[ $(id -u) -eq 0 ]] && chown postgres "$PG_DIR"
    say "starting PostgreSQL on port $pg_port (durable settings: fsync on)"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w start -o \
      "-p $pg_port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
    export LATCHKEY_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
    # PostgreSQL shares the two cores with the server and the load generator here: more
    # backends than that only take turns on the CPU (16 gave p99 stalls of up to 1.6 s).
    export LATCHKEY_POOL_SIZE=${LATCHKEY_POOL_SIZE:-8}
  else
    export LATCHKEY_DATABASE_URL=$WORK/latchkey.db
  fi
}

# wait_ready [SECONDS]: polls /health until the server answers (10 s unless told).
wait_ready() {
  local tries=$(( ${1:-10} * 40 ))
  for _ in $(seq 1 "$tries"); do
    curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && return 0
    sleep 0.025
  done
  echo "the server did not become ready" >&2
  exit 1
}
# start_server [WRAPPER...]: `latchkey serve` in the background, under WRAPPER if given.
start_server() {
  "$@" "$LATCHKEY" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
}
stop_server() {
  kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
