#!/usr/bin/env bash
# Installs everything the tests need, on a fresh machine too. Idempotent: a second run is quick.
#   Debian: JNA (Kotlin tests), zbar-tools (second barcode decoder), a JDK, curl and openssl
#           (the README examples) if missing.
#   npm:    kotlin-compiler (kotlinc) into .tools/
#   PyPI:   tests/python/requirements.txt into the virtualenv .tools/venv
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"
KOTLIN_VERSION=2.4.20

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
[ -f /usr/share/java/jna.jar ] || apt_packages+=(libjna-java)
command -v zbarimg >/dev/null || apt_packages+=(zbar-tools)
command -v javac >/dev/null || apt_packages+=(openjdk-17-jdk-headless)
command -v npm >/dev/null || apt_packages+=(npm)
# The README examples (tests/readme/run.py) use curl and openssl as a reader would.
command -v curl >/dev/null || apt_packages+=(curl)
command -v openssl >/dev/null || apt_packages+=(openssl)
# Time zones come from the OS (as on Android and iOS): the tests need the database.
[ -f /usr/share/zoneinfo/Europe/Paris ] || apt_packages+=(tzdata)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "setup: apt-get install ${apt_packages[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

kotlinc="$tools/node_modules/kotlin-compiler/bin/kotlinc"
if [ ! -x "$kotlinc" ] || ! grep -q "\"version\": \"$KOTLIN_VERSION\"" "$tools/node_modules/kotlin-compiler/package.json"; then
  echo "setup: npm install kotlin-compiler@$KOTLIN_VERSION"
  npm install --prefix "$tools" --no-audit --no-fund --silent "kotlin-compiler@$KOTLIN_VERSION"
fi

# The Android framework's API as a jar, from Maven Central (Google's Maven is out of reach): the
# package's framework code (app.tessera.android) compiles against it in tests/kotlin/run.sh.
ANDROID_ALL=org.robolectric:android-all:14-robolectric-10818077
android_all="$HOME/.m2/repository/org/robolectric/android-all/14-robolectric-10818077/android-all-14-robolectric-10818077.jar"
if [ ! -f "$android_all" ]; then
  command -v mvn >/dev/null || sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
  echo "setup: mvn dependency:get $ANDROID_ALL"
  mvn -q dependency:get -Dartifact="$ANDROID_ALL" -Dtransitive=false
fi
echo "$android_all" > "$tools/android-all.path"

# kotlinx-coroutines for the generated bindings' suspend functions (and the tests' coroutines).
COROUTINES=org.jetbrains.kotlinx:kotlinx-coroutines-core-jvm:1.10.2
coroutines="$HOME/.m2/repository/org/jetbrains/kotlinx/kotlinx-coroutines-core-jvm/1.10.2/kotlinx-coroutines-core-jvm-1.10.2.jar"
if [ ! -f "$coroutines" ]; then
  echo "setup: mvn dependency:get $COROUTINES"
  mvn -q dependency:get -Dartifact="$COROUTINES" -Dtransitive=false
fi
echo "$coroutines" > "$tools/coroutines.path"

venv="$tools/venv"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s "$root/tests/python/requirements.txt" "$stamp"; then
  echo "setup: pip install -r tests/python/requirements.txt"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/tests/python/requirements.txt"
  cp "$root/tests/python/requirements.txt" "$stamp"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
