#!/usr/bin/env bash
# Every test, in the order a failure is cheapest to find: install what is missing, a throwaway
# PostgreSQL cluster, formatting, the layers, lints, Rust tests (then the server's again on
# PostgreSQL), bindings up to date, Kotlin and Python binding tests (with the scanner
# check), the README's examples, schemathesis against the server's OpenAPI document, the FFI
# size budget and the Kotlin tests on that shipped library. CI runs exactly this (.ci/run).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# A test run builds once from scratch (CI, a fresh clone): incremental artefacts would only add
# gigabytes to the build directory. Set CARGO_INCREMENTAL=1 to keep them while iterating.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n== %s\n' "$*"; }

step "setup"
scripts/setup.sh

step "a throwaway PostgreSQL cluster (scripts/pg.sh) for the second backend's tests"
pgdir="/tmp/tessera-test-pg-$$"
eval "$(scripts/pg.sh start "$pgdir")"
trap 'scripts/pg.sh stop "$pgdir"' EXIT

step "format"
cargo fmt --all -- --check

step "layers (dependency tree and module imports)"
scripts/layers.sh

step "clippy"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

step "rust tests (the storage conformance suite on SQLite and PostgreSQL)"
cargo nextest run --workspace --all-features --no-fail-fast

step "the server's tests again on PostgreSQL: HTTP API, end-to-end scenarios, crash and fault tests, racing and offline tills, the core-vs-server rules property test"
TESSERA_TEST_BACKEND=postgres cargo nextest run -p tessera-server -p tessera-e2e --all-features --no-fail-fast

step "bindings are current (android/, ios/)"
scripts/bindings.sh check

step "the iOS package's hand-written Swift parses (no Swift toolchain here: scripts/swift-syntax.py)"
.tools/venv/bin/python scripts/swift-syntax.py

step "kotlin binding tests (JVM + JNA)"
tests/kotlin/run.sh

step "python binding tests and the scanner check (zxing-cpp)"
tests/python/run.sh

step "every README example, in order, as written (tests/readme/run.py)"
scripts/build.sh
python3 tests/readme/run.py >build/readme.log 2>&1 || { cat build/readme.log; exit 1; }
tail -n 1 build/readme.log

step "server API fuzzing against its OpenAPI document (schemathesis), on SQLite then PostgreSQL"
tests/api/run.sh
psql "$TESSERA_TEST_POSTGRES" -qc "CREATE DATABASE api_fuzz"
TESSERA_API_DATABASE="${TESSERA_TEST_POSTGRES%/*}/api_fuzz" tests/api/run.sh

step "ffi library size"
scripts/ffi-size.sh

step "kotlin binding tests again, on the library as it ships (release-ffi: trimmed SQLite, packed relocations)"
TESSERA_LIB_DIR=target/release-ffi tests/kotlin/run.sh

printf '\nall checks passed\n'
