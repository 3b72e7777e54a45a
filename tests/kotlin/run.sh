#!/usr/bin/env bash
# Compile the generated Kotlin bindings, the package's hand-written Kotlin (its HTTP client) and the
# tests with -Werror, run them on the JVM over JNA.
# Needs scripts/setup.sh and scripts/bindings.sh generate (scripts/test.sh does both).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
kotlinc="$root/.tools/node_modules/kotlin-compiler/bin/kotlinc"
jna=/usr/share/java/jna.jar
# kotlinx-coroutines (scripts/setup.sh): the bindings' suspend functions need it.
coroutines="$(cat "$root/.tools/coroutines.path")"
out="$root/build/kotlin-tests"
rm -rf "$out" && mkdir -p "$out"
# Stale bindings, as generated from another build of the library: the FFI package copied into
# app.tessera.stale with its first API checksum changed (ChecksumTest.kt expects it refused).
stale="$out/stale/tessera_stale.kt"
mkdir -p "$out/stale"
sed -e 's/^package app\.tessera$/package app.tessera.stale/' \
  -e '0,/and 0xFFFF) != \([0-9]*\))/s//and 0xFFFF) != (\1 + 1) % 65536)/' \
  "$root/build/bindings/kotlin/app/tessera/tessera.kt" > "$stale"
grep -q 'package app.tessera.stale' "$stale" && grep -q '!= (.* + 1) % 65536)' "$stale" \
  || { echo "kotlin: could not make the stale bindings" >&2; exit 1; }
"$kotlinc" -Werror -nowarn -jvm-target 17 -cp "$jna:$coroutines" -d "$out/tests.jar" \
  $(find "$root/build/bindings/kotlin" "$root/android/tessera/src/main/java" -name '*.kt' -not -path '*/app/tessera/android/*') "$stale" \
  "$root"/tests/kotlin/*.kt 2>&1 \
  | grep -v '^warning: unable to find kotlin-stdlib.jar' || true
[ -f "$out/tests.jar" ] || { echo "kotlin: compilation failed" >&2; exit 1; }
stdlib="$root/.tools/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar"

# The package's Android-framework code (app.tessera.android: the Keystore secret store) compiled
# against the framework jar from Maven Central (scripts/setup.sh fetches it). Compiled, not run:
# no Android runtime here.
android_all="$(cat "$root/.tools/android-all.path")"
"$kotlinc" -Werror -nowarn -jvm-target 17 -cp "$out/tests.jar:$android_all:$jna:$coroutines" -d "$out/android.jar" \
  $(find "$root/android/tessera/src/main/java" -path '*/app/tessera/android/*' -name '*.kt') 2>&1 \
  | grep -v '^warning: unable to find kotlin-stdlib.jar' || true
[ -f "$out/android.jar" ] || { echo "kotlin: the Android-framework code did not compile" >&2; exit 1; }

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

# TESSERA_LIB_DIR=target/release-ffi measures the library as it ships (after scripts/ffi-size.sh).
java -Djna.library.path="${TESSERA_LIB_DIR:-$root/target/debug}" -cp "$out/tests.jar:$stdlib:$jna:$coroutines" CardTestKt
