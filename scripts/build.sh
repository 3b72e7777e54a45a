#!/usr/bin/env bash
# Build the workspace for the tests, the way `cargo nextest run --workspace --all-features`
# builds it: one feature set, so the CLI and the FFI library the binding tests and schemathesis
# use are the ones the Rust tests built (a `-p` build unifies other features and recompiles
# everything that depends on them). `--lib` because no test target links the FFI library, so
# `--tests` alone would leave a stale libtessera_ffi.so behind. After the Rust tests, this links
# that library and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace --all-features --lib --bins --tests
