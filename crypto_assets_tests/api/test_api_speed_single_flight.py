"""Issue 23 in one process: single-flight recomputation, the access-log setting, `crypto-assets api
--help`. Warehouse reads are counted by the app's own `crypto_api_computations_total` metric."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
import redis

from crypto_assets.api.app import create_app
from crypto_assets.api.settings import ACCESS_LOG_ENV, ApiSettings, ConfigError, hash_key
from crypto_assets_tests.api.api_support import (
    KEYS,
    REDIS_URL,
    api_process,
    headers,
    redis_prefix,
    seed,
    settings,
)

N = 30


def _computed(app, endpoint: str) -> float:
    return app.state.api.metrics.computations.labels(endpoint)._value.get()


async def _burst(app, path: str, n: int = N) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await asyncio.gather(*(client.get(path, headers=headers("trading")) for _ in range(n)))


def _run(app, coro):
    async def main():
        try:
            return await coro
        finally:
            await app.state.api.link.close()

    return asyncio.run(main())


@pytest.mark.slow
@pytest.mark.parametrize("redis_up", [True, False], ids=["redis", "no-redis"])
def test_concurrent_misses_compute_once(sqlite_url, redis_up):
    seed(sqlite_url)
    with redis_prefix() as prefix:
        app = create_app(settings(sqlite_url, REDIS_URL if redis_up else None, prefix))

        async def scenario():
            first = await _burst(app, "/api/v1/prices/current/BTC")
            return first, _computed(app, "prices_current")

        answers, computed = _run(app, scenario())
    assert [r.status_code for r in answers] == [200] * N
    assert computed == 1, computed  # before issue 23: one warehouse read per request (30)
    assert len({r.content for r in answers}) == 1
    expected = {"miss", "shared", "hit"} if redis_up else {"bypass"}
    assert {r.headers["x-cache"] for r in answers} <= expected


@pytest.mark.slow
def test_an_expired_entry_is_recomputed_once_while_the_others_get_it_stale(sqlite_url):
    seed(sqlite_url)
    with redis_prefix() as prefix:
        app = create_app(settings(sqlite_url, REDIS_URL, prefix, cache_ttl_s={"prices_current": 0.3}))
        lock = app.state.api.cache.key("prices_current", {"symbol": "ETH"}) + ":lock"
        other = redis.Redis.from_url(REDIS_URL)

        async def scenario():
            filled = await _burst(app, "/api/v1/prices/current/ETH", 1)
            await asyncio.sleep(0.5)  # past the TTL, within the stale grace
            other.set(lock, b"another-worker", px=5000)  # as while another worker recomputes it
            waiting = await _burst(app, "/api/v1/prices/current/ETH", 10)
            stale_computed = _computed(app, "prices_current")
            other.delete(lock)
            again = await _burst(app, "/api/v1/prices/current/ETH")
            return filled[0], waiting, stale_computed, again, _computed(app, "prices_current")

        try:
            filled, waiting, stale_computed, answers, computed = _run(app, scenario())
        finally:
            other.close()
    # while someone holds the lock, the expired entry is served as it was, and nothing is computed
    assert [(r.status_code, r.headers["x-cache"]) for r in waiting] == [(200, "stale")] * 10
    assert {r.content for r in waiting} == {filled.content} and stale_computed == 1
    # once it is free, one request takes it and recomputes; the other 29 do not
    assert [r.status_code for r in answers] == [200] * N
    assert computed == 2, computed
    caches = [r.headers["x-cache"] for r in answers]
    assert caches.count("miss") == 1 and set(caches) <= {"miss", "stale", "hit", "shared"}, caches


def test_the_access_log_is_a_setting():
    assert ApiSettings.from_env({}).access_log is True
    assert ApiSettings.from_env({ACCESS_LOG_ENV: "0"}).access_log is False
    assert ApiSettings.from_env({ACCESS_LOG_ENV: "yes"}).access_log is True
    with pytest.raises(ConfigError, match=ACCESS_LOG_ENV):
        ApiSettings.from_env({ACCESS_LOG_ENV: "maybe"})


def _server_log(sqlite_url, tmp_path, env_value: str | None, flags: list[str]) -> str:
    """Start `crypto-assets api`, GET /api/v1/symbols once, stop it; its whole output."""
    env = {**os.environ, "CRYPTO_WAREHOUSE_URL": sqlite_url,
           "CRYPTO_API_KEYS": ",".join(f"{tier}:{hash_key(key)}" for tier, key in KEYS.items())}
    env.pop("REDIS_URL", None)
    env.pop(ACCESS_LOG_ENV, None)
    if env_value is not None:
        env[ACCESS_LOG_ENV] = env_value
    log_path = tmp_path / f"server-{len(list(tmp_path.glob('server-*.log')))}.log"
    with api_process(env, log_path, flags) as (base, _proc):
        r = httpx.get(f"http://{base}/api/v1/symbols?x=1", headers=headers("readonly"), timeout=10)
        assert r.status_code == 200
        time.sleep(0.3)
    return log_path.read_text()


@pytest.mark.slow
def test_the_access_log_can_be_turned_off_and_on(sqlite_url, tmp_path):
    seed(sqlite_url)
    line = "GET /api/v1/symbols?x=1 HTTP/1.1"
    assert line not in _server_log(sqlite_url, tmp_path, "0", [])
    assert line not in _server_log(sqlite_url, tmp_path, None, ["--no-access-log"])
    assert line in _server_log(sqlite_url, tmp_path, "0", ["--access-log"])  # the flag wins over the variable


def test_api_help_lists_the_real_options():
    done = subprocess.run([sys.executable, "-m", "crypto_assets.cli", "api", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for option in ("--host", "--port", "--workers", "--log-level", "--access-log", "--no-access-log", "--new-key"):
        assert option in done.stdout, done.stdout


@pytest.mark.slow
def test_the_heap_is_frozen_after_start_up(sqlite_url):
    """A fresh process: nothing frozen before the app starts, its start-up objects frozen after."""
    code = (
        "import gc, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from crypto_assets.api.app import create_app\n"
        "from crypto_assets.api.settings import ApiSettings\n"
        "before = gc.get_freeze_count()\n"
        "with TestClient(create_app(ApiSettings(warehouse_url=sys.argv[1]))) as c:\n"
        "    assert c.get('/health').status_code == 200\n"
        "    print(before, gc.get_freeze_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code, sqlite_url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 10_000, (before, after)
