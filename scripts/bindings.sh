#!/usr/bin/env bash
# Generate the Kotlin, Swift and Python bindings from the built (unstripped) FFI library.
#   scripts/bindings.sh generate   build, generate into build/bindings/, update android/ and ios/
#   scripts/bindings.sh check      fail if android/ and ios/ hold bindings older than the code
# Bindings need the unstripped library ("No UniFFI metadata found" otherwise): we generate from
# the debug build, whose metadata is the same as the release one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mode="${1:-generate}"
out="$root/build/bindings"

cargo build --quiet -p tessera-ffi -p uniffi-bindgen
lib="$root/target/debug/libtessera_ffi.so"
rm -rf "$out"
for lang in kotlin swift python; do
  ./target/debug/uniffi-bindgen generate --no-format --library "$lib" --language "$lang" \
    --out-dir "$out/$lang" >/dev/null
done
# Python loads the library from next to its modules.
cp "$lib" "$out/python/"

kotlin_dst="android/tessera/src/main/kotlin"
swift_dst="ios/Sources/Tessera"
headers_dst="ios/Generated/include"
stage="$out/committed"
mkdir -p "$stage/$kotlin_dst" "$stage/$swift_dst" "$stage/$headers_dst"
cp -r "$out/kotlin/." "$stage/$kotlin_dst/"
cp "$out/swift/"*.swift "$stage/$swift_dst/"
cp "$out/swift/"*.h "$stage/$headers_dst/"
cat "$out/swift/"*.modulemap > "$stage/$headers_dst/module.modulemap"

case "$mode" in
  generate)
    for d in "$kotlin_dst" "$swift_dst" "$headers_dst"; do
      rm -rf "${d:?}" && mkdir -p "$d" && cp -r "$stage/$d/." "$d/"
    done
    echo "bindings: generated into build/bindings, android/ and ios/"
    ;;
  check)
    status=0
    for d in "$kotlin_dst" "$swift_dst" "$headers_dst"; do
      if ! diff -r "$stage/$d" "$d" >/dev/null 2>&1; then
        echo "bindings: $d is out of date; run scripts/bindings.sh generate and commit" >&2
        status=1
      fi
    done
    [ $status -eq 0 ] && echo "bindings: android/ and ios/ are current"
    exit $status
    ;;
  *) echo "usage: $0 generate|check" >&2; exit 2 ;;
esac
