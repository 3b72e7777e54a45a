# Sourced by the load scripts (scripts/load-server.sh, scripts/load-rules.sh): wrk, a release
# `tessera serve` on loopback with the seed programme and rate limits off (one address and one
# member would hit them at once; these measure the work), a member enrolled over HTTP, and wrk
# runs that fail unless every answer is 2xx.
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# start_server BINARY: sets $work (a temporary directory, removed on exit) and $url.
start_server() {
  work="$(mktemp -d)"
  trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
  "$1" serve --addr 127.0.0.1:0 --seed --db "$work/server.db" --ready-file "$work/url" \
    --rate-per-address 0 --rate-per-member 0 --rate-per-till 0 >"$work/log" 2>&1 &
  server=$!
  for _ in $(seq 300); do [ -s "$work/url" ] && break; sleep 0.1; done
  [ -s "$work/url" ] || { cat "$work/log" >&2; echo "load: tessera serve did not start" >&2; exit 1; }
  url="$(cat "$work/url")"
}

# enrol FIELD: enrols a new member and prints FIELD of the answer (member_id, or
# tokens.access_token).
enrol() {
  curl -sf -X POST -H 'Content-Type: application/json' -H 'tessera-api-version: 1' \
    -d '{"holder_name":"Load Test","device":{"platform":"android","app_version":"3.2.0"}}' \
    "$url/v1/enrol" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# measure WRK-ARGS...: wrk with 2 threads and the latency distribution; prints requests/s and
# p50/p90/p99; fails on any answer that is not 2xx or 3xx.
measure() {
  wrk -t2 --latency "$@" | tee "$work/wrk.txt" | grep -E "Requests/sec|50%|90%|99%"
  if grep -q "Non-2xx" "$work/wrk.txt"; then
    grep "Non-2xx" "$work/wrk.txt" >&2
    echo "load: not every answer was 2xx" >&2
    exit 1
  fi
}

# Lua for wrk: each thread numbers its requests (`tid`, `n`) so that keys and ids are unique.
numbered_requests_lua='
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
end'
