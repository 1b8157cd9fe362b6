"""Issue 19, item 14: no traceback where nothing went wrong on our side, one clear line where
something did.

- A WebSocket client with a bad or missing key that leaves before the refusal is sent: the
  real API under uvicorn (its own process, its stderr captured) logs no traceback and no error.
- `crypto-assets demo` with DAGSTER_HOME on a tiny filesystem (a tmpfs mounted here): exit
  code 2 and one line naming the full disk and its free bytes, no traceback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto_assets_tests.api.api_support import free_port

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


# -- WS refusals to clients that already left -------------------------------------------------


@contextlib.contextmanager
def api_process(tmp: Path):
    """`uvicorn --factory crypto_assets.api.app:app_from_env` on a free loopback port, without
    Redis; yields (port, path of its combined stdout/stderr). Stopped afterwards."""
    port = free_port()
    log_path = tmp / "api.log"
    env = {**os.environ, "CRYPTO_WAREHOUSE_URL": f"sqlite:///{tmp / 'wh.sqlite'}",
           "CRYPTO_API_KEYS": "trading:" + "ab" * 32, "CRYPTO_API_TOKEN_SECRET": "t" * 40}
    env.pop("REDIS_URL", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "crypto_assets.api.app:app_from_env",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the API did not start"
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            time.sleep(0.1)
        yield port, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _upgrade(port: int, query: str) -> socket.socket:
    """A raw WebSocket opening handshake (no reply read)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/prices{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def _leave(sock: socket.socket, how: str) -> None:
    if how == "reset":  # RST: gone before the server even answered the handshake
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif how == "close-frame":  # a polite close frame, then gone
        mask, payload = os.urandom(4), struct.pack("!H", 1000)
        sock.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    sock.close()  # "fin": just closed


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the unmasked server frames in `data` (payloads < 64 KiB)."""
    frames, i = [], 0
    while i + 2 <= len(data):
        opcode, length = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if length == 126:
            length, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        frames.append((opcode, data[i:i + length]))
        i += length
    return frames


def test_refusing_a_websocket_client_that_already_left_logs_no_traceback(tmp_path):
    queries = ["", "?api_key=not-a-key"]  # missing key (401), unknown key (401)
    leaving = [(q, how) for q in queries for how in ("fin", "reset", "close-frame") for _ in range(4)]
    with api_process(tmp_path) as (port, log_path):
        for query, how in leaving:
            _leave(_upgrade(port, query), how)
        # A client that stays gets the refusal: the path that failed for the others is taken.
        stay = _upgrade(port, "?api_key=not-a-key")
        received = b""
        with contextlib.suppress(TimeoutError, OSError):
            while chunk := stay.recv(65536):
                received += chunk
        stay.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), received[:200]
        frames = _frames(body)
        assert json.loads(frames[0][1]) == {"type": "error", "status": 401, "detail": "unknown API key"}
        assert frames[1][0] == 0x8 and struct.unpack("!H", frames[1][1][:2])[0] == 4401
        # every connection reached the app (uvicorn logs each accept) before the logs are read
        deadline = time.monotonic() + 20
        while log_path.read_text().count("[accepted]") < len(leaving) + 1:
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(1.5)  # the refusals to the leavers run (and would fail) meanwhile
    log = log_path.read_text()
    assert log.count("[accepted]") == len(leaving) + 1
    assert "Traceback" not in log, log[-4000:]
    assert "Exception in ASGI application" not in log and "ERROR" not in log, log[-4000:]


# -- the demo on a full disk ------------------------------------------------------------------


@contextlib.contextmanager
def tiny_filesystem(where: Path, size: str):
    """A tmpfs of `size` mounted at `where` (needs root, as on the test machines); unmounted
    afterwards, also when the test fails."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"this test mounts a tmpfs (root needed): {done.stderr}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _run_demo(home: Path, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1", "DAGSTER_DISABLE_TELEMETRY": "1"}
    env.pop("CRYPTO_WAREHOUSE_URL", None)  # the embedded warehouse, under DAGSTER_HOME
    return subprocess.run([str(BIN / "crypto-assets"), "demo"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _fill(path: Path) -> None:
    with open(path / "filler", "wb") as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()


@pytest.mark.parametrize("size,filled", [("2m", True), ("2m", False)], ids=["full-at-start", "fills-up-on-the-way"])
def test_demo_on_a_full_disk_prints_one_clear_line(tmp_path, size, filled):
    with tiny_filesystem(tmp_path / "home", size) as home:
        if filled:
            _fill(home)
        done = _run_demo(home, tmp_path, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    line_format = (rf"crypto-assets demo: the disk holding DAGSTER_HOME is full: {re.escape(str(home))}, "
                   r"(\d+) bytes free \(free some space or point DAGSTER_HOME elsewhere, then run it again\)")
    # The demo's own word (Dagster may still print its event-log write errors, which name SQLite's).
    said = [re.fullmatch(line_format, line) for line in done.stderr.splitlines()
            if line.startswith("crypto-assets demo:")]
    assert len(said) == 1 and said[0], output[-3000:]
    assert int(said[0][1]) < 2 ** 20  # it is full: less than a MiB left of 2
    assert "Traceback" not in output and "Stack Trace" not in output, output[-3000:]
