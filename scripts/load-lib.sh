# Sourced by the load scripts (scripts/load-server.sh, scripts/load-rules.sh): wrk, a release
# `tessera serve` on loopback with the seed programme and rate limits off (one address and one
# member would hit them at once; these measure the work), a member enrolled over HTTP, and wrk
# runs that fail unless every answer is 2xx.
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# start_server BINARY [DATABASE_URL]: sets $work (a temporary directory, removed on exit) and
# $url. With DATABASE_URL, the server runs on that PostgreSQL database (else an SQLite file).
start_server() {
  work="$(mktemp -d)"
  servers=()
  trap 'for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
  serve_one "$@"
  url="$served_url"
}

# More arguments for every `tessera serve` (a script sets them before start_server).
serve_extra=("${serve_extra[@]}")

# serve_one BINARY [DATABASE_URL]: one more `tessera serve` (on the same database as the
# others when DATABASE_URL is given); sets $served_url. The first loads the seed catalog.
serve_one() {
  local n=${#servers[@]} database
  if [ -n "${2:-}" ]; then database=(--database "$2"); else database=(--db "$work/server.db"); fi
  local seed=(); [ "$n" -eq 0 ] && seed=(--seed)
  "$1" serve --addr 127.0.0.1:0 "${seed[@]}" "${database[@]}" --ready-file "$work/url-$n" \
    --rate-per-address 0 --rate-per-member 0 --rate-per-till 0 "${serve_extra[@]}" >"$work/log-$n" 2>&1 &
  servers+=("$!")
  for _ in $(seq 300); do [ -s "$work/url-$n" ] && break; sleep 0.1; done
  [ -s "$work/url-$n" ] || { cat "$work/log-$n" >&2; echo "load: tessera serve did not start" >&2; exit 1; }
  served_url="$(cat "$work/url-$n")"
}

# enrol FIELD...: enrols a new member and prints each FIELD of the answer (member_id, or
# tokens.access_token).
enrol() {
  curl -sf -X POST -H 'Content-Type: application/json' -H 'tessera-api-version: 1' \
    -d '{"holder_name":"Load Test","device":{"platform":"android","app_version":"3.2.0"}}' \
    "$url/v1/enrol" | python3 -c '
import json, sys
answer = json.load(sys.stdin)
for field in sys.argv[1:]:
    v = answer
    for k in field.split("."):
        v = v[k]
    print(v)' "$@"
}

# measure WRK-ARGS...: wrk with 2 threads and the latency distribution; prints requests/s and
# p50/p90/p99; fails on any answer that is not 2xx or 3xx.
measure() {
  wrk -t2 --latency "$@" | tee "$work/wrk.txt" | grep -E "Requests/sec|50%|90%|99%"
  all_2xx "$work/wrk.txt"
}

# all_2xx WRK-OUTPUT: fails unless every answer in wrk's output was 2xx or 3xx.
all_2xx() {
  if grep -q "Non-2xx" "$1"; then
    grep "Non-2xx" "$1" >&2
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
