#!/usr/bin/env bash
# schemathesis (PyPI) against a real `tessera serve`: every operation of the served OpenAPI
# document, member routes with a member's token and admin routes with the admin token, all checks.
# Needs scripts/setup.sh (scripts/test.sh runs it). TESSERA_FUZZ_EXAMPLES sets examples per operation.
# TESSERA_API_DATABASE=postgres://… runs the server on that (empty) PostgreSQL database instead of
# an SQLite file.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/api-tests${TESSERA_API_DATABASE:+-postgres}"
rm -rf "$out" && mkdir -p "$out"
"$root/scripts/build.sh"
# Rate limits off: the fuzzer is one client sending thousands of requests a minute on purpose
# (the limits and their 429 answers are tested in tests/e2e/tests/trust.rs).
if [ -n "${TESSERA_API_DATABASE:-}" ]; then
  database=(--database "$TESSERA_API_DATABASE")
else
  database=(--db "$out/server.db")
fi
"$root/target/debug/tessera" serve --addr 127.0.0.1:0 --seed "${database[@]}" \
  --admin-token fuzz-admin-token --rate-per-address 0 --rate-per-member 0 --rate-per-till 0 \
  --ready-file "$out/url" >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  [ -s "$out/url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$out/url" ] || { echo "api: tessera serve did not start" >&2; exit 1; }
url="$(cat "$out/url")"

py="$root/.tools/venv/bin/python"
enrol() {
  "$py" - "$url" <<'PY'
import json, sys, urllib.request
body = json.dumps({"holder_name": "Fuzz", "device": {"platform": "cli", "app_version": "1"}}).encode()
req = urllib.request.Request(sys.argv[1] + "/v1/enrol", body, {"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["tokens"]["access_token"])
PY
}
member_token="$(enrol)"

st() {
  (cd "$out" && "$root/.tools/venv/bin/schemathesis" --config-file "$root/tests/api/schemathesis.toml" \
    run "$url/openapi.json" --checks all --max-examples "${TESSERA_FUZZ_EXAMPLES:-40}" \
    --generation-deterministic --request-timeout 10 "$@")
}
echo "api: member routes"
st --include-tag member --exclude-operation-id erase_me -H "Authorization: Bearer $member_token"
echo "api: member erasure (a member of its own: it ends that member's credentials)"
st --include-operation-id erase_me -H "Authorization: Bearer $(enrol)"
echo "api: till routes (a till of the first Paris shop)"
till_token="$("$py" - "$url" <<'PY'
import json, sys, urllib.request
body = json.dumps({"store_id": "st-paris-01"}).encode()
req = urllib.request.Request(sys.argv[1] + "/admin/v1/tills", body,
                             {"content-type": "application/json", "authorization": "Bearer fuzz-admin-token"})
print(json.load(urllib.request.urlopen(req))["token"])
PY
)"
st --include-tag till -H "Authorization: Bearer $till_token"
echo "api: admin routes"
st --include-tag admin -H "Authorization: Bearer fuzz-admin-token"
echo "api: ops routes (health, readiness, metrics: no credentials)"
st --include-tag ops
