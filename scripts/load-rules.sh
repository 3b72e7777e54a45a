#!/usr/bin/env bash
# Rule events per second against `tessera serve` (release build, embedded SQLite, rate limits off,
# the example challenges of docs/rules.example.json), one event per request posted by wrk to
# `POST /admin/v1/members/{id}/rule-events`, for a member with a short history and one with a
# long one (issue #17: an event should cost the same at both). Every answer checked 2xx.
#   scripts/load-rules.sh [tessera binary] [seconds] [long history] [connections]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/release/tessera}"
secs="${2:-10}"
long="${3:-100000}"
conns="${4:-8}"
# shellcheck source=scripts/load-lib.sh
. "$root/scripts/load-lib.sh"
start_server "$bin"
curl -sf -X PUT -H 'Authorization: Bearer tessera-admin' -H 'Content-Type: application/json' \
  --data-binary @"$root/docs/rules.example.json" "$url/admin/v1/challenges" >/dev/null

# A member with `n` store visits over the last two years, sent 1,000 per request.
member() {
  local id
  id="$(enrol member_id)"
  python3 - "$url" "$id" "$1" <<'PY'
import json, sys, time, urllib.request
url, member, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = int(time.time() * 1000)
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

cat > "$work/event.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer tessera-admin"
$numbered_requests_lua
function request()
  n = n + 1
  local body = string.format(
    '{"events":[{"event_id":"load-%d-%d","kind":"store_visit","at_ms":%d,"store_id":"st-paris-01","channel":null,"amount_cents":0,"lines":[]}]}',
    tid, n, os.time() * 1000 - 1000)
  return wrk.format(nil, nil, nil, body)
end
LUA

for n in 100 "$long"; do
  started=$(date +%s)
  id="$(member "$n")"
  echo "== one event per request, member with $n events of history (loaded in $(( $(date +%s) - started )) s; $secs s, $conns connections)"
  measure -c"$conns" -d"${secs}s" -s "$work/event.lua" "$url/admin/v1/members/$id/rule-events"
done
