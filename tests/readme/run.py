#!/usr/bin/env python3
"""Run every shell example in README.md, in order, as written.

The `sh` blocks become one bash script (`set -euo pipefail`) run in a fresh directory with the
`tessera` under test (target/debug) first on PATH and the repository's `docs/` beside it. A
`tessera serve` line is started in the background (the previous server stopped first) and waited
for on its port. Lines that cannot run here are listed below with the reason, and printed as
skipped; every other line must succeed.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lines not run, and why. Anything else in an `sh` block runs.
SKIPPED = {
    "scripts/test.sh": "the command running this check",
    "cargo run --bin tessera -- demo": "`tessera demo` below runs the same demo",
    "cargo install --locked --path cli": "a release build takes minutes; target/debug/tessera is on PATH",
}


def commands(readme: str) -> list[str]:
    """The README's shell commands: continuation lines joined, blank lines dropped."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        joined = block.replace("\\\n", " ")
        out += [line.strip() for line in joined.splitlines() if line.strip()]
    return out


def without_comment(line: str) -> str:
    """The command without its trailing comment (`  # …` outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and line[:i].endswith("  "):
            return line[:i].rstrip()
    return line


def script(lines: list[str]) -> str:
    out = [
        "set -euo pipefail",
        "server=''",
        "stop() { if [ -n \"$server\" ]; then kill \"$server\" 2>/dev/null; wait \"$server\" 2>/dev/null || true; server=''; fi; }",
        "trap stop EXIT",
        "ready() { for _ in $(seq 300); do curl -sf -o /dev/null http://127.0.0.1:8080/openapi.json && return 0; "
        "kill -0 \"$server\" 2>/dev/null || { echo 'readme: the server exited' >&2; cat serve.log >&2; return 1; }; "
        "sleep 0.1; done; echo 'readme: the server did not answer' >&2; return 1; }",
    ]
    for line in lines:
        command = without_comment(line)
        out.append(f"printf '\\n$ %s\\n' {shquote(command)}")
        if command in SKIPPED:
            out.append(f"echo '  (skipped: {SKIPPED[command]})'")
        elif command.startswith("tessera serve"):
            out += ["stop", f"{command} >serve.log 2>&1 &", "server=$!", "ready"]
        else:
            out.append(command)
    out.append("printf '\\nreadme: every example ran\\n'")
    return "\n".join(out) + "\n"


def shquote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def main() -> int:
    binary = ROOT / "target" / "debug" / "tessera"
    if not binary.exists():
        print(f"readme: {binary} is missing (scripts/build.sh builds it)", file=sys.stderr)
        return 1
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 8080)) == 0:
            print("readme: port 8080 is in use; the README's server listens there", file=sys.stderr)
            return 1
    lines = commands((ROOT / "README.md").read_text())
    with tempfile.TemporaryDirectory(prefix="tessera-readme-") as work:
        shutil.copytree(ROOT / "docs", Path(work) / "docs")
        env = dict(os.environ, PATH=f"{binary.parent}:{os.environ['PATH']}")
        for var in ("TESSERA_SERVER", "TESSERA_STORE", "TESSERA_TILL_TOKEN", "TESSERA_LOG"):
            env.pop(var, None)
        run = subprocess.run(["bash", "-c", script(lines)], cwd=work, env=env)
        if run.returncode != 0:
            print("readme: an example failed (the last `$` line above)", file=sys.stderr)
        return run.returncode


if __name__ == "__main__":
    sys.exit(main())
