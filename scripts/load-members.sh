#!/usr/bin/env bash
# `GET /v1/me` with a large programme loaded (issue #17: p99 ≤ 10 ms with 1,000,000 members), on
# SQLite and on PostgreSQL in one run. The members (each with a device, an access token and a
# consent record) are written straight into the database the server created, then wrk reads
# `/v1/me` for 1,000 of them spread over the whole id range (a new one at each request), every
# answer checked 2xx.
#   scripts/load-members.sh [members] [tessera binary] [seconds] [connections]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
members="${1:-1000000}"
bin="${2:-$root/target/release/tessera}"
secs="${3:-10}"
conns="${4:-16}"
# shellcheck source=scripts/load-lib.sh
. "$root/scripts/load-lib.sh"
pgdir="/tmp/tessera-members-pg-$$"
eval "$(TESSERA_PG_DURABLE=1 "$root/scripts/pg.sh" start "$pgdir")"

# rows TABLE: the table's rows as tab-separated text, member i's access token `load-i`.
rows() {
  python3 - "$1" "$members" <<'PY'
import base64, hashlib, sys
table, n = sys.argv[1], int(sys.argv[2])
now, far = 1_790_000_000_000, 4_000_000_000_000
out = sys.stdout
for i in range(n):
    if table == "member":
        out.write(f"m-{i:07d}\tC{i:012d}\tMember {i}\t2026-01-01\t\t{now}\n")
    elif table == "device":
        h = base64.urlsafe_b64encode(hashlib.sha256(f"load-{i}".encode()).digest()).rstrip(b"=").decode()
        out.write(f"d-{i:07d}\tm-{i:07d}\tandroid\t3.2.0\t{now}\t{h}\t{far}\tr-{i}\t{far}\n")
    else:
        out.write(f"c-{i:07d}\tm-{i:07d}\tmarketing_offers\tpush\tgranted\tv1\t{'0'*64}\t"
                  f"2026-01-01T00:00:00Z\t2026-01-01T00:00:00Z\t{now}\t2026-01-01T00:00:00Z\t"
                  f"in_store\tstaff\t\\N\th\n")
PY
}
member_cols="id, card_number, holder_name, member_since, tier, created_at"
device_cols="id, member_id, platform, app_version, created_at, access_hash, access_expires, refresh_hash, refresh_expires"
consent_cols="record_id, member_id, purpose, channel, decision, text_version, text_sha256, decided_at, effective_at, effective_ms, recorded_at, source, recorded_by, app_version, body_hash"

load_sqlite() {
  python3 - "$1" "$members" <<'PY'
import base64, hashlib, sqlite3, sys
path, n = sys.argv[1], int(sys.argv[2])
now, far = 1_790_000_000_000, 4_000_000_000_000
c = sqlite3.connect(path, timeout=60)
c.execute("BEGIN")
c.executemany("INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at) VALUES (?,?,?,?,?,?)",
    ((f"m-{i:07d}", f"C{i:012d}", f"Member {i}", "2026-01-01", "", now) for i in range(n)))
c.executemany("INSERT INTO device (id, member_id, platform, app_version, created_at, access_hash, access_expires, refresh_hash, refresh_expires) VALUES (?,?,?,?,?,?,?,?,?)",
    ((f"d-{i:07d}", f"m-{i:07d}", "android", "3.2.0", now,
      base64.urlsafe_b64encode(hashlib.sha256(f"load-{i}".encode()).digest()).rstrip(b"=").decode(),
      far, f"r-{i}", far) for i in range(n)))
c.executemany("INSERT INTO consent_record (record_id, member_id, purpose, channel, decision, text_version, text_sha256, decided_at, effective_at, effective_ms, recorded_at, source, recorded_by, app_version, body_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    ((f"c-{i:07d}", f"m-{i:07d}", "marketing_offers", "push", "granted", "v1", "0" * 64,
      "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", now, "2026-01-01T00:00:00Z", "in_store", "staff", None, "h")
     for i in range(n)))
c.execute("COMMIT")
c.close()
PY
}

load_postgres() {
  rows member | psql -q "$1" -c "COPY member ($member_cols) FROM STDIN"
  rows device | psql -q "$1" -c "COPY device ($device_cols) FROM STDIN"
  rows consent | psql -q "$1" -c "COPY consent_record ($consent_cols) FROM STDIN"
  psql -q "$1" -c "ANALYZE"
}

measure_me() { # LABEL
  python3 - "$members" >"$work/me.lua" <<'PY'
import sys
n = int(sys.argv[1])
step = max(1, n // 1000)
tokens = ",".join(f'"load-{i}"' for i in range(0, n, step))
print(f"tokens = {{{tokens}}}")
print('''
local i = 0
function request()
  i = i + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1],
    ["tessera-api-version"] = "1"})
end''')
PY
  echo "== $1: GET /v1/me, $members members ($secs s, $conns connections)"
  measure -c"$conns" -d"${secs}s" -s "$work/me.lua" "$url/v1/me"
}

start_server "$bin"
trap 'for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; "$root/scripts/pg.sh" stop "$pgdir"' EXIT
started=$(date +%s)
load_sqlite "$work/server.db"
echo "(SQLite: $members members loaded in $(( $(date +%s) - started )) s)"
measure_me "SQLite"
kill "${servers[@]}" 2>/dev/null || true
rm -rf "$work"

psql -q "$TESSERA_TEST_POSTGRES" -c "CREATE DATABASE members_load"
db="${TESSERA_TEST_POSTGRES%/*}/members_load"
start_server "$bin" "$db"
trap 'for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; "$root/scripts/pg.sh" stop "$pgdir"' EXIT
started=$(date +%s)
load_postgres "$db"
echo "(PostgreSQL: $members members loaded in $(( $(date +%s) - started )) s)"
measure_me "PostgreSQL"
