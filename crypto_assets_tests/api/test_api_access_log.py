"""No API key reaches a log line (issue 11, item 9): the real `crypto-assets api` server, on a
loopback port, is called with `?api_key=` on the WebSocket feed (the documented way for browsers)
and on an HTTP URL; its whole log output is then read."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest
from websockets.sync.client import connect

from crypto_assets.api.logs import redact_query
from crypto_assets_tests.api.api_support import KEYS, api_process, seed

KEY = KEYS["trading"]


@pytest.fixture
def server(sqlite_url, tmp_path):
    """`python -m crypto_assets.cli api` on 127.0.0.1; yields (base URL, a function returning its
    log output so far); stopped (SIGINT, then kill) afterwards."""
    from crypto_assets.api.settings import hash_key

    seed(sqlite_url)
    env = {**os.environ, "CRYPTO_WAREHOUSE_URL": sqlite_url, "CRYPTO_API_WS_POLL_SECONDS": "0.2",
           "CRYPTO_API_KEYS": ",".join(f"{tier}:{hash_key(key)}" for tier, key in KEYS.items())}
    env.pop("REDIS_URL", None)
    log_path = tmp_path / "server.log"
    with api_process(env, log_path) as (base, proc):
        yield base, proc, log_path


@pytest.mark.slow
def test_keys_in_query_strings_never_reach_the_server_log(server):
    base, proc, log_path = server
    with connect(f"ws://{base}/ws/prices?api_key={KEY}&symbols=BTC", open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and hello["symbols"] == ["BTC"]  # the key was accepted
    r = httpx.get(f"http://{base}/api/v1/symbols?api_key={KEY}&x=1", headers={"X-API-Key": KEY}, timeout=10)
    assert r.status_code == 200
    with connect(f"ws://{base}/ws/prices?symbols=BTC&API_KEY={KEY}", open_timeout=10) as ws:
        json.loads(ws.recv(timeout=10))
    time.sleep(0.5)  # let the access lines flush
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)
    log = log_path.read_text()
    assert KEY not in log, log
    assert '"WebSocket /ws/prices?api_key=***&symbols=BTC" [accepted]' in log, log  # the lines are there ...
    assert "GET /api/v1/symbols?api_key=***&x=1 HTTP/1.1" in log, log  # ... with the key replaced
    assert "symbols=BTC&API_KEY=***" in log, log


def test_redaction_keeps_everything_but_secret_values():
    assert redact_query("/ohlcv/BTC?interval=1h&page_token=abc.def") == "/ohlcv/BTC?interval=1h&page_token=abc.def"
    assert redact_query("/x?token=t&api%5Fkey=k&key=&apikey=z") == "/x?token=***&api%5Fkey=***&key=&apikey=***"
    assert redact_query("no query here: key=value") == "no query here: key=value"
