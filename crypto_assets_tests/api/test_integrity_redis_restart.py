"""Issue 19, item 11: after a Redis restart the API cache recovers within seconds.

The real API (uvicorn on loopback) against a redis-server of this test's own, 20 concurrent
clients of a cached endpoint; the redis-server is killed (-9) and restarted on the same port.
Every response says how the cache served it (`X-Cache: hit|miss|bypass`, crypto_assets/api/
state.py). Before the fix every stale pooled connection failed once and reopened the link's
5 s breaker, so about all responses were still bypasses 40 s after the restart.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import httpx
import pytest
import redis

from crypto_assets.api import create_app
from crypto_assets.api.settings import ApiSettings
from crypto_assets_tests.api.api_support import free_port, headers, live_server, seed, settings

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

CLIENTS = 20
RETRY_S = ApiSettings().redis_retry_s  # the production breaker window (5 s)
RECOVERY_BOUND_S = RETRY_S + 1.0  # after the restart, no bypass may start later than this
OBSERVE_S = 8.0  # ... for this long
HIGH_LIMITS = {"readonly": "1000000/minute", "trading": "1000000/minute", "admin": "1000000/minute"}


def _start_redis(port: int) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _kill(proc)
                    raise AssertionError(f"redis-server did not start on port {port}") from None
                time.sleep(0.02)
    finally:
        client.close()


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


async def _drive(base: str, port: int, box: dict) -> list[tuple[float, float, str]]:
    """(request start, response time, X-Cache) of every response; kills and restarts Redis on the way."""
    seen: list[tuple[float, float, str]] = []
    stop = asyncio.Event()

    async def client():
        async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as c:
            while not stop.is_set():
                started = time.monotonic()
                r = await c.get("/api/v1/symbols", headers=headers("readonly"))
                if r.status_code != 200:
                    box.setdefault("errors", []).append(f"{r.status_code} {r.text[:300]}")
                    continue
                seen.append((started, time.monotonic(), r.headers["x-cache"]))

    tasks = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    try:
        deadline = time.monotonic() + 20
        while sum(x == "hit" for *_, x in seen) < 5 * CLIENTS:  # warm: served from the cache
            assert time.monotonic() < deadline, f"no cache hits yet: {seen[:20]}"
            await asyncio.sleep(0.1)
        box["killed_at"] = time.monotonic()
        _kill(box["redis"])  # kill -9: no goodbye to the pooled connections
        await asyncio.sleep(1.0)
        box["redis"] = await asyncio.to_thread(_start_redis, port)  # same port, empty
        box["restarted_at"] = time.monotonic()
        await asyncio.sleep(RECOVERY_BOUND_S + OBSERVE_S)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return seen


def test_cache_stops_bypassing_within_seconds_of_a_redis_restart(sqlite_url):
    seed(sqlite_url)
    port = free_port()
    box = {"redis": _start_redis(port)}
    try:
        # A generous read timeout: 20 clients and the server share one process (and a busy CI
        # machine), and a slow reply is not what this test is about.
        app = create_app(settings(sqlite_url, f"redis://127.0.0.1:{port}/0", "restart-test",
                                  redis_retry_s=RETRY_S, redis_timeout_s=3.0, rate_limits=HIGH_LIMITS))
        with live_server(app) as base:
            seen = asyncio.run(_drive(base, port, box))
            with httpx.Client(base_url=f"http://{base}") as c:
                assert c.get("/ready").json()["redis"]["state"] == "ok"
    finally:
        _kill(box["redis"])

    assert not box.get("errors"), box["errors"][:5]  # every request was answered from somewhere
    killed, restarted = box["killed_at"], box["restarted_at"]
    before = [x for _, done, x in seen if done < killed]
    down = [x for t, done, x in seen if killed < t and done < restarted]
    settled = [x for t, _, x in seen if t >= restarted + RECOVERY_BOUND_S]
    assert before and "bypass" not in before and "hit" in before  # the cache worked
    assert down and set(down) == {"bypass"}  # the API reports serving without Redis
    bypasses_after = [t - restarted for t, _, x in seen if t >= restarted and x == "bypass"]
    recovery = max(bypasses_after, default=0.0)
    print(f"last bypass {recovery:.2f}s after the restart; {len(settled)} responses after "
          f"{RECOVERY_BOUND_S:.0f}s, {settled.count('bypass')} bypasses")
    assert len(settled) >= 100, len(settled)  # the clients kept going
    assert settled.count("bypass") == 0, (
        f"{settled.count('bypass')} of {len(settled)} responses bypassed the cache more than "
        f"{RECOVERY_BOUND_S:.0f}s after the restart (last one {recovery:.1f}s after)")
    assert settled.count("hit") > 0.9 * len(settled)  # and it serves from the cache again
