#!/usr/bin/env bash
# The server's figures on each backend, in one run (issue #17): embedded SQLite, PostgreSQL with
# one `tessera serve`, PostgreSQL with two processes on the same database (each behind its own
# port, as a load balancer would spread them; wrk drives both at once, half the connections
# each). For each, spread over 64 members: `GET /v1/me`, member mutations (a new
# Idempotency-Key each), till purchases (a new receipt and key each, points earned); and rule
# events, one per request, each wrk connection (a thread of its own) posting to its own member
# in time order (as one member's events come; the kept engine counts them, ADR 0024).
# Every answer is checked 2xx. PostgreSQL is a throwaway cluster (scripts/pg.sh) with fsync on
# and synchronous_commit off: a commit survives a crash of the processes, as SQLite's WAL with
# synchronous=NORMAL does, without waiting for the disk.
#   scripts/load-backends.sh [tessera binary] [seconds] [connections] [members]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/release/tessera}"
secs="${2:-10}"
conns="${3:-16}"
members="${4:-64}"
# shellcheck source=scripts/load-lib.sh
. "$root/scripts/load-lib.sh"
pgdir="/tmp/tessera-load-pg-$$"
eval "$(TESSERA_PG_DURABLE=1 "$root/scripts/pg.sh" start "$pgdir")"

# A wrk response hook: the first answers that are not 2xx, shown (wrk only counts them).
report_lua='
local shown = 0
function response(status, headers, body)
  if status >= 300 and shown < 3 then
    shown = shown + 1
    io.stderr:write("load: answer ", status, ": ", body, "\n")
  end
end'

lua() { # lua NAME BODY: a wrk script numbering its requests
  printf '%s\n%s\n%s\n' "$numbered_requests_lua" "$report_lua" "$2" >"$work/$1.lua"
}

# run LABEL PATH WRK-ARGS...: wrk on every server at once, connections shared; sums requests/s.
run() {
  local label="$1" path="$2"; shift 2
  local n=${#urls[@]} i pids=()
  for i in "${!urls[@]}"; do
    OFFSET=$((i * conns / n)) wrk -t"${wrk_threads:-2}" --latency -c$((conns / n)) -d"${secs}s" "$@" \
      "${urls[$i]}$path" >"$work/wrk-$i.txt" &
    pids+=("$!")
  done
  for p in "${pids[@]}"; do wait "$p"; done
  for i in "${!urls[@]}"; do all_2xx "$work/wrk-$i.txt"; done
  python3 - "$label" "$work"/wrk-*.txt <<'PY'
import re, sys
label, files = sys.argv[1], sys.argv[2:]
rps, p50, p99 = 0.0, [], []
def ms(v):
    n, unit = float(re.match(r"[\d.]+", v).group()), re.search(r"[a-z]+$", v).group()
    return n * {"us": 0.001, "ms": 1, "s": 1000}[unit]
for f in files:
    text = open(f).read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50.append(ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)))
    p99.append(ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)))
print(f"{label:<34} {rps:>9.0f} /s   p50 {max(p50):7.2f} ms   p99 {max(p99):7.2f} ms")
PY
  rm -f "$work"/wrk-*.txt
}

measure_backend() { # measure_backend LABEL PROCESSES [DATABASE_URL]
  local label="$1" processes="$2" database="${3:-}"
  start_server "$bin" $database
  urls=("$url")
  for _ in $(seq 2 "$processes"); do serve_one "$bin" $database; urls+=("$served_url"); done
  # Members the load is spread over (a member's own phone sends one request at a time).
  local i token card till tokens="" cards=""
  for i in $(seq "$members"); do
    read -r token card < <(enrol tokens.access_token card.card_number | paste -sd' ')
    tokens+="\"$token\","; cards+="\"$card\","
  done
  printf 'tokens = {%s}\ncards = {%s}\n' "$tokens" "$cards" >"$work/members.lua"
  till="$(curl -sf -X POST -H 'Authorization: Bearer tessera-admin' -H 'Content-Type: application/json' \
    -d '{"store_id":"st-paris-01"}' "$url/admin/v1/tills" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  curl -sf -X PUT -H 'Authorization: Bearer tessera-admin' -H 'Content-Type: application/json' \
    --data-binary @"$root/docs/rules.example.json" "$url/admin/v1/challenges" >/dev/null
  # One member per connection for the rule events.
  local event_members=""
  for i in $(seq "$conns"); do event_members+="\"$(enrol member_id)\","; done

  echo "== $label"
  lua me "$(cat "$work/members.lua")"'
function request()
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
    ["tessera-api-version"] = "1"})
end'
  run "GET /v1/me" /v1/me -s "$work/me.lua"
  lua mutate "$(cat "$work/members.lua")"'
wrk.method = "POST"
wrk.body = [[{"type":"set_favourite_store","store_id":"st-paris-01","favourite":true}]]
function request()
  n = n + 1
  return wrk.format(nil, nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)], ["tessera-api-version"] = "1",
    ["Idempotency-Key"] = "load-" .. tid .. "-" .. n .. "-" .. math.random(1e9)})
end'
  run "POST /v1/mutations" /v1/mutations -s "$work/mutate.lua"
  lua purchase "$(cat "$work/members.lua")"'
function request()
  n = n + 1
  local receipt = "L-" .. tid .. "-" .. n .. "-" .. math.random(1e9)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer '"$till"'", ["Idempotency-Key"] = receipt},
    string.format([[{"receipt":"%s","card_number":"%s","lines":[{"sku":"sencha","category":"tea","collection":null,"quantity":1,"amount_cents":1000}],"total_cents":1000,"occurred_offline_at":null}]], receipt, cards[math.random(#cards)]))
end'
  run "POST /v1/till/purchases" /v1/till/purchases -s "$work/purchase.lua"
  lua event "members = {$event_members}"'
local offset = tonumber(os.getenv("OFFSET") or "0")
function request()
  n = n + 1
  start = start or (os.time() - 3600) * 1000
  return wrk.format("POST", "/admin/v1/members/" .. members[offset + tid] .. "/rule-events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer tessera-admin"},
    string.format([[{"events":[{"event_id":"load-%d-%d","kind":"store_visit","at_ms":%d,"store_id":"st-paris-01","channel":null,"amount_cents":0,"lines":[]}]}]],
      tid, n, start + n * 10))
end'
  wrk_threads=$((conns / ${#urls[@]})) run "POST /admin/v1/members/{id}/rule-events" / -s "$work/event.lua"
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
  trap - EXIT
}

trap '"$root/scripts/pg.sh" stop "$pgdir"' EXIT
measure_backend "SQLite (one process)" 1
psql "$TESSERA_TEST_POSTGRES" -qc "CREATE DATABASE load_one" -c "CREATE DATABASE load_two"
measure_backend "PostgreSQL, one process" 1 "${TESSERA_TEST_POSTGRES%/*}/load_one"
measure_backend "PostgreSQL, two processes" 2 "${TESSERA_TEST_POSTGRES%/*}/load_two"
"$root/scripts/pg.sh" stop "$pgdir"
