#!/usr/bin/env bash
# Keep-alive figures on the real Spin (issue 13): the product's components
# served by a `spin` binary, measured with wrk on keep-alive connections and
# with `Connection: close`, for `health` (no store call), class validate (60
# trainees, one get-many) and a registry trainer PUT (a write), on Spin's
# default SQLite store. The test host's double of this is
# `cargo run --release -p bench -- --keepalive-only`; this script is the check
# on the platform itself (docs/PERFORMANCE.md, "Keep-alive on the real Spin").
#
# Usage: tests/bench/spin_keepalive.sh SPIN LABEL [WASM_DIR]
#   SPIN      a Spin 4.0.2 binary (../shared/tools/build-spin.sh builds one,
#             and with `nodelay` one with TCP_NODELAY on accepted sockets)
#   LABEL     the label printed in front of each figure
#   WASM_DIR  where class_opening.wasm etc. are
#             (default target/wasm32-wasip2/release; build them first)
# Environment: MANIFEST (default spin.toml; spin.p2.toml with WASM_DIR
# target/p2/wasm32-wasip2/release for the p2 build), PORT (default 3917), SECONDS_PER_ROUTE (default 5),
# CONNECTIONS (default 4). Needs wrk, curl and the project's mint-token.
set -eu
SPIN=$1
LABEL=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WASM_DIR=$(cd "${3:-$ROOT/target/wasm32-wasip2/release}" && pwd)
PORT=${PORT:-3917}
SECS=${SECONDS_PER_ROUTE:-5}
CONN=${CONNECTIONS:-4}
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
trap 'kill $SPIN_PID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

# The product's manifest with the components taken from WASM_DIR, its own store.
sed -E "s#source = \"target/(p2/)?wasm32-wasip2/release/#source = \"$WASM_DIR/#" "$ROOT/${MANIFEST:-spin.toml}" >"$WORK/spin.toml"
printf '[key_value_store.default]\ntype = "spin"\npath = "%s/kv.db"\n' "$WORK" >"$WORK/rc.toml"
MINT="$ROOT/target/debug/mint-token"
[ -x "$MINT" ] || (cd "$ROOT" && cargo build -q -p web --bin mint-token)
"$MINT" keygen --dir "$WORK/id" >/dev/null
"$SPIN" up -f "$WORK/spin.toml" --listen 127.0.0.1:$PORT \
  --runtime-config-file "$WORK/rc.toml" \
  --variable auth_jwks="$(cat "$WORK/id/jwks.json")" \
  --variable auth_issuer=http://localhost/local-idp \
  --variable trainee_public_key="$(cat "$WORK/id/trainee.pub")" \
  --variable trainee_signing_key="$(cat "$WORK/id/trainee.key")" \
  --variable pii_key="$(openssl rand -hex 32)" \
  --variable pii_hmac_key="$(openssl rand -hex 32)" \
  --variable audit_checkpoint_key="$(openssl rand -hex 32)" >"$WORK/spin.log" 2>&1 &
SPIN_PID=$!
for _ in $(seq 1 100); do
  curl -sf "$URL/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf "$URL/api/v1/health" >/dev/null || { cat "$WORK/spin.log"; exit 1; }

BUREAU=$("$MINT" --dir "$WORK/id" --role bureau_admin)
INST=$("$MINT" --dir "$WORK/id" --role institution --institution 52530102MJ1D4567X6)
put() { curl -sf -X PUT "$URL$1" -H "authorization: Bearer $BUREAU" -H 'content-type: application/json' -d "$2" >/dev/null; }
put /api/v1/registry/institutions/52530102MJ1D4567X6 \
  '{"credit_code":"52530102MJ1D4567X6","name":"昆明市五华区示例职业培训学校","status":"filed","filed_districts":["530102"]}'
for T in YN-T-0001 YN-T-0002; do
  put /api/v1/registry/trainers/$T "{\"registration_no\":\"$T\",\"name\":\"讲师\",\"status\":\"registered\"}"
done
put /api/v1/registry/textbooks/9787111213826 '{"isbn":"978-7-111-21382-6","title":"养老护理员（基础知识）"}'
# 60 trainees, starting in 14 days (the sample's default date).
START=$(date -u -d '+14 days' +%F)
(cd "$ROOT" && cargo run -q -p policy --features fixtures --example sample-application -- "$START" 60) >"$WORK/class.json"

cat >"$WORK/validate.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$WORK/class.json"):read("*a")
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $INST"
LUA
cat >"$WORK/put.lua" <<LUA
wrk.method = "PUT"
wrk.body = '{"registration_no":"YN-T-0009","name":"讲师","status":"registered"}'
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $BUREAU"
LUA
# Each answer must be what the route gives when it works (no 4xx/5xx counted as speed).
check() { code=$(curl -s -o /dev/null -w '%{http_code}' "$@"); case $code in 2??) ;; *) echo "check failed: $code ${*: -1}"; exit 1 ;; esac; }
check "$URL/api/v1/health"
check "$URL/api/v1/classes/validate" -H "authorization: Bearer $INST" -H 'content-type: application/json' -d @"$WORK/class.json"
check -X PUT "$URL/api/v1/registry/trainers/YN-T-0009" -H "authorization: Bearer $BUREAU" -H 'content-type: application/json' \
  -d '{"registration_no":"YN-T-0009","name":"讲师","status":"registered"}'
length=$(curl -s -D - -o /dev/null "$URL/api/v1/health" | tr -d '\r' | grep -i '^content-length:' || echo "content-length: (none)")

run() { # name, wrk args...
  local name=$1; shift
  for mode in keep-alive close; do
    local hdr=()
    [ $mode = close ] && hdr=(-H "Connection: close")
    local out
    out=$(wrk -t1 -c"$CONN" -d"${SECS}s" --latency "${hdr[@]}" "$@" 2>&1)
    local rps p50 errs
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf '%-28s | %-24s | %-10s | %10s req/s | p50 %8s | non-2xx %s\n' "$LABEL" "$name" "$mode" "$rps" "$p50" "${errs:-0}"
  done
  # p50 on one keep-alive connection.
  local one
  one=$(wrk -t1 -c1 -d2s --latency "$@" 2>&1 | awk '$1=="50%" {print $2}')
  printf '%-28s | %-24s | %-10s | %16s | p50 %8s |\n' "$LABEL" "$name" "1 conn" "" "$one"
}
echo "# $LABEL: $("$SPIN" --version | head -1); health answers with $length"
run "health" "$URL/api/v1/health"
run "class validate (60)" -s "$WORK/validate.lua" "$URL/api/v1/classes/validate"
run "registry trainer PUT" -s "$WORK/put.lua" "$URL/api/v1/registry/trainers/YN-T-0009"
