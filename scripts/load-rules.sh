#!/usr/bin/env bash
# Rule events per second against `tessera serve` (release build, embedded SQLite, rate limits off,
# the example challenges of docs/rules.example.json), one event per request posted by wrk to
# `POST /admin/v1/members/{id}/rule-events`, for members with a short history and members with a
# long one (issue #17: an event should cost the same at both). Each wrk connection is its own
# thread and posts to its own member, one request at a time, in time order (as a member's events
# come): the kept engine counts them; an event older than the last one counted would rebuild it
# from the whole history. Every answer checked 2xx.
#   scripts/load-rules.sh [tessera binary] [seconds] [long history] [connections] [database url]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/release/tessera}"
secs="${2:-10}"
long="${3:-100000}"
conns="${4:-8}"
# shellcheck source=scripts/load-lib.sh
. "$root/scripts/load-lib.sh"
start_server "$bin" "${5:-}"
curl -sf -X PUT -H 'Authorization: Bearer tessera-admin' -H 'Content-Type: application/json' \
  --data-binary @"$root/docs/rules.example.json" "$url/admin/v1/challenges" >/dev/null

# A member with `n` store visits over two years up to two hours ago, sent 1,000 per request.
member() {
  local id
  id="$(enrol member_id)"
  python3 - "$url" "$id" "$1" <<'PY'
import json, sys, time, urllib.request
url, member, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = int(time.time() * 1000) - 2 * 3_600_000
span = 2 * 365 * 86_400_000
for start in range(0, n, 1000):
    events = [{"event_id": f"h-{i}", "kind": "store_visit", "at_ms": now - span + span * i // n,
               "store_id": "st-paris-01", "channel": None, "amount_cents": 0, "lines": []}
              for i in range(start, min(n, start + 1000))]
    req = urllib.request.Request(f"{url}/admin/v1/members/{member}/rule-events",
                                 json.dumps({"events": events}).encode(),
                                 {"content-type": "application/json",
                                  "authorization": "Bearer tessera-admin"})
    assert json.load(urllib.request.urlopen(req))["accepted"] == len(events)
PY
  echo "$id"
}

# Each thread (one connection) its member, events 10 ms apart from an hour ago, in order.
cat > "$work/event.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer tessera-admin"
local threads = 0
local members = {}
for m in string.gmatch(os.getenv("MEMBERS"), "[^,]+") do table.insert(members, m) end
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
  thread:set("member", members[threads])
end
function init(args)
  n = 0
  start = (os.time() - 3600) * 1000
end
function request()
  n = n + 1
  local body = string.format(
    '{"events":[{"event_id":"load-%d-%d","kind":"store_visit","at_ms":%d,"store_id":"st-paris-01","channel":null,"amount_cents":0,"lines":[]}]}',
    tid, n, start + n * 10)
  return wrk.format(nil, "/admin/v1/members/" .. member .. "/rule-events", nil, body)
end
LUA

for n in 100 "$long"; do
  started=$(date +%s)
  members=""
  for _ in $(seq "$conns"); do members="$members,$(member "$n")"; done
  # PostgreSQL: the load's autovacuum done before measuring, not during.
  [ -z "${5:-}" ] || psql -q "$5" -c "VACUUM ANALYZE" >/dev/null
  echo "== one event per request, $conns members with $n events of history each (loaded in $(( $(date +%s) - started )) s; $secs s, $conns connections, one member each)"
  MEMBERS="${members#,}" wrk -t"$conns" -c"$conns" -d"${secs}s" --latency -s "$work/event.lua" "$url" \
    | tee "$work/wrk.txt" | grep -E "Requests/sec|50%|90%|99%"
  all_2xx "$work/wrk.txt"
done
