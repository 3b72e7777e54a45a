#!/usr/bin/env bash
# The layers ARCHITECTURE.md draws, checked: the domain depends on no I/O crate, the server not on
# the phone client (nor its barcode encoder or retry crates), nothing below depends on what sits
# above it; and no import cycles between the modules of a crate (scripts/layers.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
status=0

# deps PACKAGE: the crates PACKAGE's library is built with (normal dependencies, all features).
deps() {
  cargo tree --quiet -p "$1" --all-features -e normal --prefix none --format '{p}' \
    | awk '{print $1}' | sort -u
}

# forbid PACKAGE WHY CRATE...: fail if PACKAGE depends on any of CRATE.
forbid() {
  local package="$1" why="$2"
  shift 2
  local have
  have="$(deps "$package")"
  for crate in "$@"; do
    if grep -qx "$crate" <<<"$have"; then
      echo "layers: $package depends on $crate ($why)" >&2
      cargo tree --quiet -p "$package" --all-features -e normal -i "$crate" 2>/dev/null | head -8 >&2 || true
      status=1
    fi
  done
}

io="rusqlite libsqlite3-sys rusqlite_migration tokio reqwest hyper mio socket2 axum tower backon rxing png"
# shellcheck disable=SC2086
forbid tessera-domain "the domain does no I/O" $io
# shellcheck disable=SC2086
forbid tessera-analytics "the analytics do no I/O" $io
forbid tessera-ffi "the phone library does not carry the analytics" tessera-analytics linfa ndarray
forbid tessera-server "the server is not a phone" tessera-core tessera-till rxing png backon
forbid tessera-core "the phone client is not the server or the till" tessera-server tessera-till axum
forbid tessera-till "the till is not the server" tessera-server axum
forbid tessera-ffi "the phone's HTTP stack is the app's own (docs/adr/0015)" \
  reqwest hyper hyper-util rustls webpki-roots tokio

python3 scripts/layers.py || status=1

[ $status -eq 0 ] && echo "layers: domain without I/O, server without the phone client, no import cycles"
exit $status
