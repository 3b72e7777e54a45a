#!/usr/bin/env bash
# Build the FFI library as it ships (profile release-ffi: opt-level z, fat LTO, one codegen unit,
# stripped) and print its size. LTO only reaches the cdylib when it is built alone, hence
# `cargo rustc --crate-type cdylib`. Fails above the budget (default 4.1 MB, TESSERA_FFI_MAX_BYTES;
# 6.5 MB until the network stack left the library: docs/adr/0015; 4 MB until the phone signed its
# rotating member code, +82 KB: docs/adr/0025).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/ffi-env.sh
. scripts/ffi-env.sh
max="${TESSERA_FFI_MAX_BYTES:-4100000}"
# Relative relocations packed (RELR, glibc 2.36+): what the phones' linkers do too (Android's
# lld packs them, iOS uses chained fixups); 200 KB of the 4 MB otherwise (docs/adr/0015).
# `-z defs`: a symbol the trimmed SQLite left out but some code still calls fails the link here,
# not the app's first load (it happened: rusqlite's `hooks` feature calls the progress handler).
cargo rustc --quiet --profile release-ffi -p tessera-ffi --lib --crate-type cdylib \
  -- -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,-z,defs
lib="target/release-ffi/libtessera_ffi.so"
size=$(stat -c %s "$lib")
awk -v f="$lib" -v s="$size" -v m="$max" -v a="$(uname -m)" \
  'BEGIN { printf "ffi-size: %s is %d bytes (%.2f MB) for %s; budget %d bytes\n", f, s, s / 1e6, a, m }'
[ "$size" -le "$max" ] || { echo "ffi-size: over budget" >&2; exit 1; }
