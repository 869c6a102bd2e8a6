#!/usr/bin/env bash
# Runs the conformance harness against a throwaway local Latchkey:
#   builds `latchkey` and `latchkey-conformance`, starts a server on a free port over a
#   temporary SQLite database, creates the test user and the clients with the CLI (three for
#   the Basic/Form Post plans, one with a back-channel and one with a front-channel logout URI),
#   picks a free port for the harness's back-channel logout listener, writes the harness
#   configuration, runs the harness, stops the server, and exits with the harness's exit code
#   (0: nothing failed, 1: a module failed, other: setup problem).
#
# Works from any directory; needs only cargo and the local server (no network).
#   conformance/run-local.sh [harness options, e.g. --only oidcc-refresh --timings]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
say() { printf '== [%3ss] %s\n' "$SECONDS" "$*" >&2; }

say "building latchkey and latchkey-conformance"
(cd "$ROOT" && cargo build --quiet --locked -p latchkey -p latchkey-conformance --bins)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
LATCHKEY=$TARGET_DIR/debug/latchkey
HARNESS=$TARGET_DIR/debug/latchkey-conformance
[[ -x $LATCHKEY && -x $HARNESS ]] || { echo "built binaries not found in $TARGET_DIR/debug" >&2; exit 2; }

# A clean environment: no LATCHKEY_* from the caller, no latchkey.toml (run from the temp dir).
for var in $(compgen -e); do
  [[ $var == LATCHKEY_* ]] && unset "$var"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-conformance.XXXXXX")
SERVER_PID=
cleanup() {
  local code=$?
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  # Exit code 1 is a module failure (the harness printed why); anything else is a setup problem.
  if [[ $code -ne 0 && $code -ne 1 && -s $WORK/server.log ]]; then
    echo "--- last lines of the server log ($WORK/server.log) ---" >&2
    tail -n 30 "$WORK/server.log" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$WORK"

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "no free port found" >&2
  return 1
}

PORT=$(free_port)
export LATCHKEY_DATABASE_URL=$WORK/latchkey.db
export LATCHKEY_BIND=127.0.0.1:$PORT
export LATCHKEY_ISSUER=http://127.0.0.1:$PORT
export LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD=admin-password-$RANDOM$RANDOM
LATCHKEY_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
export LATCHKEY_KEY_ENCRYPTION_KEY
# The plans log the same test user in ~90 times within a few minutes from one address: far past
# the login rate limit, which is a protection, not part of what the plans test.
export LATCHKEY_RATE_LIMITS__ENABLED=false
# The back-channel logout receiver below is loopback.
export LATCHKEY_OUTBOUND__ALLOW_PRIVATE_NETWORKS=true

say "starting latchkey on $LATCHKEY_ISSUER"
"$LATCHKEY" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# Ready when GET /health answers 200 (plain bash: no curl needed).
ready=
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "latchkey exited during start" >&2
    exit 2
  fi
  if { exec 3<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null; then
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    status=$(head -n 1 <&3 || true)
    exec 3<&- 3>&-
    if [[ $status == *" 200"* ]]; then
      ready=1
      break
    fi
  fi
  sleep 0.2
done
[[ -n $ready ]] || { echo "latchkey did not become ready on port $PORT" >&2; exit 2; }

REDIRECT_URI=https://conformance.example/callback
POST_LOGOUT_URI=https://conformance.example/post_logout_redirect
USERNAME=conformance
PASSWORD=conformance-password-$RANDOM$RANDOM

say "creating the test user and clients"
printf '%s\n' "$PASSWORD" | "$LATCHKEY" user create --username "$USERNAME" \
  --email conformance@example.com --password-stdin >/dev/null

# Prints `client_id client_secret` of a new client.
new_client() {
  local out
  out=$("$LATCHKEY" client create --redirect-uri "$REDIRECT_URI" \
    --post-logout-redirect-uri "$POST_LOGOUT_URI" \
    --grant-type authorization_code --grant-type refresh_token \
    --scope "openid profile email address phone offline_access" "$@")
  local id secret
  id=$(printf '%s' "$out" | grep -o '"client_id": *"[^"]*"' | head -n 1 | sed 's/.*: *"\(.*\)"/\1/')
  secret=$(printf '%s' "$out" | grep -o '"client_secret": *"[^"]*"' | head -n 1 | sed 's/.*: *"\(.*\)"/\1/')
  [[ -n $id && -n $secret ]] || { echo "unexpected client create output: $out" >&2; return 1; }
  printf '%s %s\n' "$id" "$secret"
}
c1=$(new_client --name "Conformance 1" --grant-type implicit)
c2=$(new_client --name "Conformance 2")
cp=$(new_client --name "Conformance post" --auth-method client_secret_post)
read -r C1_ID C1_SECRET <<<"$c1"
read -r C2_ID C2_SECRET <<<"$c2"
read -r CP_ID CP_SECRET <<<"$cp"

# The logout plans' clients: back-channel logout to the harness's own listener (a free port of
# its own), front-channel logout to a URI the harness only reads from the OP's iframes.
BC_PORT=$(free_port)
while [[ $BC_PORT == "$PORT" ]]; do BC_PORT=$(free_port); done
BACKCHANNEL_LISTEN=127.0.0.1:$BC_PORT
BACKCHANNEL_URI=http://$BACKCHANNEL_LISTEN/backchannel_logout
FRONTCHANNEL_URI=https://conformance.example/frontchannel_logout
cb=$(new_client --name "Conformance back-channel" --backchannel-logout-uri "$BACKCHANNEL_URI")
cf=$(new_client --name "Conformance front-channel" --frontchannel-logout-uri "$FRONTCHANNEL_URI")
read -r CB_ID CB_SECRET <<<"$cb"
read -r CF_ID CF_SECRET <<<"$cf"

json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
cat >"$WORK/conformance.json" <<EOF
{
  "issuer": "$LATCHKEY_ISSUER",
  "allow_http": true,
  "redirect_uri": "$REDIRECT_URI",
  "post_logout_redirect_uri": "$POST_LOGOUT_URI",
  "user": {"username": "$USERNAME", "password": "$PASSWORD", "login_hint": "$USERNAME"},
  "client": {"client_id": "$C1_ID", "client_secret": "$C1_SECRET"},
  "client2": {"client_id": "$C2_ID", "client_secret": "$C2_SECRET"},
  "client_post": {"client_id": "$CP_ID", "client_secret": "$CP_SECRET"},
  "client_backchannel": {"client_id": "$CB_ID", "client_secret": "$CB_SECRET"},
  "backchannel_listen": "$BACKCHANNEL_LISTEN",
  "backchannel_logout_uri": "$BACKCHANNEL_URI",
  "client_frontchannel": {"client_id": "$CF_ID", "client_secret": "$CF_SECRET"},
  "frontchannel_logout_uri": "$FRONTCHANNEL_URI",
  "rotate_keys_command": ["$(json_escape "$LATCHKEY")", "keys", "rotate"]
}
EOF

say "running the harness"
set +e
"$HARNESS" --config "$WORK/conformance.json" "$@"
code=$?
set -e
say "done (harness exit code $code)"
exit "$code"
