"""Python binding tests: the generated module and the library sit in build/bindings/python."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, os.environ.get("TESSERA_PY_BINDINGS", str(ROOT / "build" / "bindings" / "python")))

import contextlib
import json
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest


def call(url, method, path, body=None, token="tessera-admin", timeout=60):
    """An admin API request (the development token by default): status and parsed body."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read()
        return resp.status, (json.loads(text) if text else None)


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
