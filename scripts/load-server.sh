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
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
# Rate limits off: one address and one member would hit them at once; this measures the work.
"$bin" serve --addr 127.0.0.1:0 --seed --db "$work/server.db" --ready-file "$work/url" \
  --rate-per-address 0 --rate-per-member 0 --rate-per-till 0 >"$work/log" 2>&1 &
server=$!
for _ in $(seq 300); do [ -s "$work/url" ] && break; sleep 0.1; done
url="$(cat "$work/url")"
token="$(curl -sf -X POST -H 'Content-Type: application/json' -H 'tessera-api-version: 1' \
  -d '{"holder_name":"Load Test","device":{"platform":"android","app_version":"3.2.0"}}' \
  "$url/v1/enrol" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"]["access_token"])')"
curl -sf -H "Authorization: Bearer $token" -H 'tessera-api-version: 1' "$url/v1/me" >/dev/null \
  || { echo "load: GET /v1/me failed" >&2; exit 1; }
echo "== GET /v1/me ($secs s, $conns connections, 2 threads)"
wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $token" \
  -H 'tessera-api-version: 1' "$url/v1/me" | tee "$work/me.txt" | grep -E "Requests/sec|50%|90%|99%"
# Every answer must have been a 200: a 401 or 429 would measure something else.
if grep -q "Non-2xx" "$work/me.txt"; then grep "Non-2xx" "$work/me.txt" >&2; echo "load: not every answer was 2xx" >&2; exit 1; fi
echo "== POST /v1/mutations, a favourite shop set, a new key each ($secs s, $conns connections)"
cat > "$work/mutate.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"type":"set_favourite_store","store_id":"st-paris-01","favourite":true}'
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
end
function request()
  n = n + 1
  -- wrk.format replaces wrk.headers with the table it is given: pass them all.
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Idempotency-Key"] = "load-" .. tid .. "-" .. n
  return wrk.format(nil, nil, headers)
end
LUA
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/mutate.lua" \
  -H "Authorization: Bearer $token" -H 'tessera-api-version: 1' "$url/v1/mutations" | tee "$work/mutate.txt" | grep -E "Requests/sec|50%|90%|99%"
if grep -q "Non-2xx" "$work/mutate.txt"; then grep "Non-2xx" "$work/mutate.txt" >&2; echo "load: not every mutation was 2xx" >&2; exit 1; fi
echo "== GET /no-such-route (the HTTP ceiling)"
wrk -t2 -c"$conns" -d"${secs}s" --latency "$url/no-such-route" | grep -E "Requests/sec|50%|90%|99%"
