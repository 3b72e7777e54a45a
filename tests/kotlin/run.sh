#!/usr/bin/env bash
# The Android package's Kotlin, built and tested by Maven on the JVM (android/pom.xml):
#   maven/jvm        the generated bindings, the pure-Kotlin layer and the binding tests
#                    (tests/kotlin) over JNA, against the real server on a loopback port
#   maven/framework  the Android-framework code, compiled against android-all and run under
#                    Robolectric
# Needs scripts/setup.sh and scripts/bindings.sh (scripts/test.sh runs both first).
# TESSERA_LIB_DIR=target/release-ffi runs them on the library as it ships (after scripts/ffi-size.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/kotlin-tests"
rm -rf "$out" && mkdir -p "$out"

# Stale bindings, as generated from another build of the library: the FFI package copied into
# app.tessera.stale with its first API checksum changed (ChecksumTest.kt expects it refused).
# A clean build each run: what the summary counts was built now.
rm -rf "$root"/android/maven/*/target
stale_dir="$root/android/maven/jvm/target/generated-test-sources/stale"
mkdir -p "$stale_dir"
stale="$stale_dir/tessera_stale.kt"
sed -e 's/^package app\.tessera$/package app.tessera.stale/' \
  -e '0,/and 0xFFFF) != \([0-9]*\))/s//and 0xFFFF) != (\1 + 1) % 65536)/' \
  "$root/android/tessera/src/main/kotlin/app/tessera/tessera.kt" > "$stale"
grep -q 'package app.tessera.stale' "$stale" && grep -q '!= (.* + 1) % 65536)' "$stale" \
  || { echo "kotlin: could not make the stale bindings" >&2; exit 1; }

# The sync tests talk to a real server on a free loopback port, with the seed catalog.
"$root/scripts/build.sh"
ready="$out/server-url"
"$root/target/debug/tessera" serve --addr 127.0.0.1:0 --seed --db "$out/server.db" \
  --ready-file "$ready" >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  [ -s "$ready" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$ready" ] || { echo "kotlin: tessera serve did not start" >&2; exit 1; }
export TESSERA_SERVER_URL="$(cat "$ready")"

lib_dir="${TESSERA_LIB_DIR:-target/debug}"
case "$lib_dir" in /*) ;; *) lib_dir="$root/$lib_dir" ;; esac
status=0
mvn -B -q -f "$root/android/pom.xml" -Dtessera.lib.dir="$lib_dir" test >"$out/maven.log" 2>&1 || status=$?
[ $status -eq 0 ] || tail -n 60 "$out/maven.log"
# The surefire reports say what ran (and that something did).
python3 "$root/tests/kotlin/summary.py" "$root/android/maven" || status=1
exit $status
