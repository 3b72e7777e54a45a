"""Python binding tests: the generated module and the library sit in build/bindings/python."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, os.environ.get("TESSERA_PY_BINDINGS", str(ROOT / "build" / "bindings" / "python")))

import contextlib
import signal
import subprocess
import tempfile
import time

import pytest


@contextlib.contextmanager
def serve(*extra, db=None):
    """A real `tessera serve` on a free loopback port with the seed catalog, its own database
    (or `db`), and `extra` arguments; yields its URL."""
    binary = os.environ.get("TESSERA_BIN", str(ROOT / "target" / "debug" / "tessera"))
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "url"
        proc = subprocess.Popen(
            [binary, "serve", "--addr", "127.0.0.1:0", "--seed", "--db", db or str(Path(tmp) / "server.db"),
             "--ready-file", str(ready), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while not ready.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"tessera serve exited: {proc.stderr.read().decode()}")
                if time.monotonic() > deadline:
                    raise RuntimeError("tessera serve did not start in 30 s")
                time.sleep(0.05)
            yield ready.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def server_url():
    """One server for the whole run."""
    with serve() as url:
        yield url
