#!/usr/bin/env bash
# Apple Wallet passes served per second by the PassKit web service (issue #18): what a Wallet
# asks after a push, `GET /passkit/v1/passes/{passType}/{serial}` with the pass's token, against a
# release `tessera serve` (embedded SQLite, rate limits off) set up with operator files made by
# openssl (a 2048-bit RSA pass type key): each answer is the pass as it is now, signed (CMS) and
# zipped. The peer in the same run: the same request with If-Modified-Since (304: the pass looked
# up and its content checked, nothing signed). Every answer checked 2xx/3xx.
#   scripts/load-wallet.sh [tessera binary] [seconds] [connections]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/release/tessera}"
secs="${2:-10}"
conns="${3:-16}"
# shellcheck source=scripts/load-lib.sh
. "$root/scripts/load-lib.sh"

files="$(mktemp -d)"
(
  cd "$files"
  o() { openssl "$@" >/dev/null 2>&1; }
  o req -x509 -newkey rsa:2048 -nodes -keyout wwdr.key -out wwdr.pem -days 2 -subj "/CN=Load WWDR"
  o req -newkey rsa:2048 -nodes -keyout pass.key -out pass.csr -subj "/UID=pass.app.tessera.load/CN=Load"
  printf 'basicConstraints=critical,CA:FALSE\n' > leaf.ext
  o x509 -req -in pass.csr -CA wwdr.pem -CAkey wwdr.key -set_serial 3 -out pass.pem -days 2 -extfile leaf.ext
  mkdir images
  python3 - <<'PY'
import struct, zlib
def png(w, h):
    raw = b"".join(b"\x00" + b"\x50\x60\x70" * w for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for name, w, h in [("icon.png", 29, 29), ("icon@2x.png", 58, 58), ("logo.png", 160, 50), ("logo@2x.png", 320, 100)]:
    open(f"images/{name}", "wb").write(png(w, h))
PY
  cat > wallet.json <<JSON
{"branding": {"programme_name": "Tessera Club", "organization_name": "Maison Tessera",
  "foreground": [255, 255, 255], "background": [20, 40, 80], "label": [200, 210, 230]},
 "apple": {"pass_type_id": "pass.app.tessera.load", "team_id": "TESSERA123",
  "web_service_url": "http://127.0.0.1/passkit", "certificate": "pass.pem", "key": "pass.key",
  "wwdr": "wwdr.pem", "images": "images", "apns_url": "http://127.0.0.1:1"}}
JSON
)
serve_extra=(--wallet-config "$files/wallet.json")
start_server "$bin"
trap 'for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" "$files"' EXIT

token="$(enrol tokens.access_token)"
curl -sf -H "Authorization: Bearer $token" "$url/v1/wallet/apple/card?lat=48.8566&lon=2.3522" \
  -o "$work/card.pkpass"
read -r serial auth < <(python3 - "$work/card.pkpass" <<'PY'
import json, sys, zipfile
p = json.loads(zipfile.ZipFile(sys.argv[1]).read("pass.json"))
print(p["serialNumber"], p["authenticationToken"])
PY
)
modified="$(curl -sfI -H "Authorization: ApplePass $auth" \
  "$url/passkit/v1/passes/pass.app.tessera.load/$serial" | tr -d '\r' | sed -n 's/^last-modified: //Ip')"
path="/passkit/v1/passes/pass.app.tessera.load/$serial"
echo "== the latest pass, signed, per request ($secs s, $conns connections; $(stat -c %s "$work/card.pkpass") bytes)"
measure -c"$conns" -d"${secs}s" -H "Authorization: ApplePass $auth" "$url$path"
echo "== peer: If-Modified-Since, 304 (looked up, not signed)"
measure -c"$conns" -d"${secs}s" -H "Authorization: ApplePass $auth" -H "If-Modified-Since: $modified" "$url$path"
