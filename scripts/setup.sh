#!/usr/bin/env bash
# Installs everything the tests need, on a fresh machine too. Idempotent: a second run is quick.
#   Debian: zbar-tools (second barcode decoder), a JDK and Maven, curl and openssl (the README
#           examples), PostgreSQL (the second backend's tests), Chromium (the console's browser
#           tests) if missing.
#   Maven:  the Android package's build and test dependencies (android/pom.xml)
#   PyPI:   tests/python/requirements.txt into the virtualenv .tools/venv
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
command -v zbarimg >/dev/null || apt_packages+=(zbar-tools)
command -v javac >/dev/null || apt_packages+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || apt_packages+=(maven)
# The README examples (tests/readme/run.py) use curl and openssl as a reader would.
command -v curl >/dev/null || apt_packages+=(curl)
command -v openssl >/dev/null || apt_packages+=(openssl)
# The PostgreSQL backend's tests run on a throwaway cluster of Debian's server (scripts/pg.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_packages+=(postgresql)
# The merchant console's tests drive Debian's Chromium, headless (tests/python/test_console.py).
command -v chromium >/dev/null || apt_packages+=(chromium)
# Time zones come from the OS (as on Android and iOS): the tests need the database.
[ -f /usr/share/zoneinfo/Europe/Paris ] || apt_packages+=(tzdata)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "setup: apt-get install ${apt_packages[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# The Android package's Kotlin is built and tested by Maven (android/pom.xml: Kotlin, JNA,
# kotlinx-coroutines, JUnit, ZXing, the framework jar, all from Maven Central). Resolve them now,
# so that a missing artifact fails here, by name, rather than in the middle of the tests.
command -v mvn >/dev/null || sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
if ! mvn -B -q -f "$root/android/pom.xml" dependency:go-offline >"$tools/maven-resolve.log" 2>&1; then
  cat "$tools/maven-resolve.log" >&2
  echo "setup: Maven could not resolve the Android package's dependencies (above)" >&2
  exit 1
fi

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
