#!/usr/bin/env bash
# An external load generator (wrk) against `tessera serve` on loopback, seed programme, embedded
# SQLite: a member's `GET /v1/me` with a real access token, member mutations (`POST
# /v1/mutations`, a new Idempotency-Key each, so each is applied), and a 404 as the HTTP ceiling,
# in one run. Prints wrk's requests/s and latency distribution for each; fails on any answer
# that is not 2xx (but the 404s).
#   scripts/load-server.sh [tessera binary] [seconds] [connections]
# Default binary: target/release/tessera (cargo build --release -p tessera-cli).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/release/tessera}"
secs="${2:-10}"
conns="${3:-16}"
# shellcheck source=scripts/load-lib.sh
. "$root/scripts/load-lib.sh"
start_server "$bin"
token="$(enrol tokens.access_token)"
member=(-H "Authorization: Bearer $token" -H 'tessera-api-version: 1')

echo "== GET /v1/me ($secs s, $conns connections, 2 threads)"
measure -c"$conns" -d"${secs}s" "${member[@]}" "$url/v1/me"

echo "== POST /v1/mutations, a favourite shop set, a new key each ($secs s, $conns connections)"
cat > "$work/mutate.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"type":"set_favourite_store","store_id":"st-paris-01","favourite":true}'
wrk.headers["Content-Type"] = "application/json"
$numbered_requests_lua
function request()
  n = n + 1
  -- wrk.format replaces wrk.headers with the table it is given: pass them all.
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Idempotency-Key"] = "load-" .. tid .. "-" .. n
  return wrk.format(nil, nil, headers)
end
LUA
measure -c"$conns" -d"${secs}s" -s "$work/mutate.lua" "${member[@]}" "$url/v1/mutations"

echo "== GET /no-such-route (the HTTP ceiling)"
wrk -t2 -c"$conns" -d"${secs}s" --latency "$url/no-such-route" | grep -E "Requests/sec|50%|90%|99%"
