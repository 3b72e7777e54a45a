#!/usr/bin/env bash
# A push campaign to many devices (issue #17): wall time from the operator's request to the
# campaign's `done`, and the server's peak memory (VmHWM), on SQLite and on PostgreSQL, in one
# run. The audience (members with a push token and consent to offers by push) is written
# straight into a database the server created; the push services are the `push-receiver`
# stand-in on loopback (the server's real FCM request builder talks to it); every push is
# accepted, and the receiver's count of distinct device tokens is checked against the report.
#   scripts/load-campaign.sh [devices] [tessera binary] [push-receiver binary] [push rate]
# Defaults: 100000 devices, target/release/{tessera,push-receiver}, no rate limit (0).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
devices="${1:-100000}"
bin="${2:-$root/target/release/tessera}"
receiver_bin="${3:-$root/target/release/push-receiver}"
rate="${4:-0}"
work="$(mktemp -d)"
pgdir="/tmp/tessera-campaign-pg-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$root/scripts/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
eval "$(TESSERA_PG_DURABLE=1 "$root/scripts/pg.sh" start "$pgdir")"

wait_file() { for _ in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }

"$receiver_bin" 127.0.0.1:0 "$work/receiver.url" &
pids+=("$!")
wait_file "$work/receiver.url"
receiver="$(cat "$work/receiver.url")"

# The audience as SQL (the same statements for both backends; ids in order).
python3 - "$devices" >"$work/audience.sql" <<'PY'
import sys
n = int(sys.argv[1])
now = 1_790_000_000_000
print("BEGIN;")
for start in range(0, n, 1000):
    rows = range(start, min(n, start + 1000))
    print("INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at) VALUES "
          + ",".join(f"('m-{i:07d}','C{i:012d}','Member {i}','2026-01-01','',{now})" for i in rows) + ";")
    print("INSERT INTO device (id, member_id, platform, app_version, created_at, access_hash, access_expires, refresh_hash, refresh_expires) VALUES "
          + ",".join(f"('d-{i:07d}','m-{i:07d}','android','3.2.0',{now},'a-{i}',{now},'r-{i}',{now})" for i in rows) + ";")
    print("INSERT INTO push_token (device_id, member_id, provider, token, updated_at) VALUES "
          + ",".join(f"('d-{i:07d}','m-{i:07d}','fcm','tok-{i:07d}',{now})" for i in rows) + ";")
    print("INSERT INTO consent_record (record_id, member_id, purpose, channel, decision, text_version, text_sha256, decided_at, effective_at, effective_ms, recorded_at, source, recorded_by, app_version, body_hash) VALUES "
          + ",".join(f"('c-{i:07d}','m-{i:07d}','marketing_offers','push','granted','v1','{'0'*64}','2026-01-01T00:00:00Z','2026-01-01T00:00:00Z',{now},'2026-01-01T00:00:00Z','in_store','staff',NULL,'h')" for i in rows) + ";")
print("COMMIT;")
PY

# run LABEL DATABASE-ARGS...: a server on a fresh database, the audience loaded, one campaign.
run() {
  local label="$1"; shift
  rm -f "$work/url"
  "$bin" serve --addr 127.0.0.1:0 --seed "$@" --ready-file "$work/url" \
    --rate-per-address 0 --rate-per-member 0 --rate-per-till 0 --push-rate "$rate" \
    --fcm-project load --fcm-token load-token --fcm-url "$receiver" >"$work/server.log" 2>&1 &
  local server=$!
  pids+=("$server")
  wait_file "$work/url"
  local url; url="$(cat "$work/url")"
  load_audience "$@"
  local before; before="$(curl -sf "$receiver/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accepted"])')"
  python3 - "$url" "$receiver" "$server" "$label" "$devices" "$before" <<'PY'
import json, sys, time, urllib.request
url, receiver, pid, label, devices, before = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
def call(method, path, body=None):
    req = urllib.request.Request(url + path, json.dumps(body).encode() if body else None,
        {"content-type": "application/json", "authorization": "Bearer tessera-admin"}, method=method)
    with urllib.request.urlopen(req) as r:
        return r.status, json.load(r)
offer = {"id": "of-load-1", "title": "Tea time", "description": "At the till.",
    "kind": {"type": "gift", "item": "a tin of tea"}, "valid_from": "2026-01-01T00:00:00Z",
    "valid_to": "2027-12-31T23:59:59Z", "channel": "both", "days": [], "store_ids": [],
    "store_tags": [], "categories": [], "tiers": [], "segments": [], "min_basket_cents": None,
    "per_member_limit": None, "requires_clip": True}
started = time.monotonic()
status, report = call("POST", "/admin/v1/campaigns", {"id": "load-1", "offer": offer,
    "title": "Tea time", "expires_at": "2027-12-31T00:00:00Z"})
accepted_in = time.monotonic() - started
assert status == 202, (status, report)
while report["state"] != "done":
    time.sleep(0.2)
    _, report = call("GET", "/admin/v1/campaigns/load-1")
wall = time.monotonic() - started
with urllib.request.urlopen(receiver + "/count") as r:
    count = json.load(r)
received = count["accepted"] - before
hwm = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM:"))
assert report["members"] == devices and report["sent"] == devices and received == devices, (report, received)
print(f"{label:<12} {devices} devices: accepted in {accepted_in*1000:.0f} ms, done in {wall:.1f} s "
      f"({devices/wall:,.0f} pushes/s); server peak memory {int(hwm)/1024:.0f} MiB; "
      f"report sent {report['sent']}, failed {report['failed']}, unknown {report['unknown']}")
PY
  kill "$server"
  wait "$server" 2>/dev/null || true
}

load_audience() {
  case "$1" in
    --db) python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(open(sys.argv[2]).read()); c.close()' "$2" "$work/audience.sql" ;;
    --database) psql -q "$2" -f "$work/audience.sql" >/dev/null ;;
  esac
}

run "SQLite" --db "$work/server.db"
psql -q "$TESSERA_TEST_POSTGRES" -c "CREATE DATABASE campaign_load"
run "PostgreSQL" --database "${TESSERA_TEST_POSTGRES%/*}/campaign_load"
