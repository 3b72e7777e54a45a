#!/usr/bin/env bash
# Python binding tests and the scanner check (needs scripts/setup.sh and scripts/bindings.sh generate).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/scripts/build.sh"  # the sync tests start `tessera serve`
exec "$root/.tools/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/python" "$@"
