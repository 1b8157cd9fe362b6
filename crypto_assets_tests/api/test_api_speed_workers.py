"""Issue 23 across processes: two real uvicorn workers on loopback share a Redis of their own
(a throw-away redis-server, so its command statistics count only these workers).

- the per-key rate limit, now counted in the same Redis script as the cache lookup, holds in sum
  over both workers (and counts requests that end in 404 too);
- a cached answer costs exactly one Redis command (the combined script), nothing else;
- N concurrent requests for an invalidated entry, spread over both workers, are computed once
  (`crypto_api_computations_total`, summed over the workers' /metrics).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import httpx
import pytest
import redis

from crypto_assets.api.settings import hash_key
from crypto_assets_tests.api.api_support import KEYS, free_port, own_redis, seed

LIMIT = 10  # readonly requests per minute, per key, over all workers


@pytest.fixture
def redis_of_its_own():
    with own_redis() as port:
        client = redis.Redis(port=port)
        try:
            yield port, client
        finally:
            client.close()


def _start(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "crypto_assets.api.app:app_from_env",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


def _wait_up(proc: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "an API worker exited"
        assert time.monotonic() < deadline, "an API worker did not start"
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)


@pytest.fixture
def two_workers(sqlite_url, redis_of_its_own):
    port, client = redis_of_its_own
    seed(sqlite_url)
    env = {**os.environ, "CRYPTO_WAREHOUSE_URL": sqlite_url, "REDIS_URL": f"redis://127.0.0.1:{port}/0",
           "CRYPTO_API_KEYS": ",".join(f"{tier}:{hash_key(key)}" for tier, key in KEYS.items()),
           "CRYPTO_API_RATE_LIMITS": f"readonly={LIMIT}/minute,trading=100000/minute,admin=100000/minute",
           "CRYPTO_API_TOKEN_SECRET": "x" * 40, "CRYPTO_API_ACCESS_LOG": "0", "CRYPTO_API_REDIS_PREFIX": "t23"}
    started = [_start(env) for _ in range(2)]
    try:
        for proc, base in started:
            _wait_up(proc, base)
        yield [base for _, base in started], client
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _computations(base: str, endpoint: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = re.search(rf'^crypto_api_computations_total{{endpoint="{endpoint}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_the_per_key_limit_holds_in_sum_over_two_workers(two_workers):
    (a, b), _ = two_workers
    key = {"X-API-Key": KEYS["readonly"]}
    codes = []
    for i in range(3 * LIMIT):
        base = a if i % 2 == 0 else b
        path = "/api/v1/prices/current/BTC" if i % 3 else "/api/v1/prices/current/NOPE"  # 404s count too
        r = httpx.get(f"{base}{path}", headers=key, timeout=10)
        codes.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and r.headers["x-ratelimit-limit"] == f"{LIMIT} per 1 minute"
            assert r.json()["detail"].startswith(f"rate limit {LIMIT} per 1 minute exceeded; retry in ")
    assert sum(c != 429 for c in codes) == LIMIT, codes
    assert set(codes[:LIMIT]) <= {200, 404} and codes[LIMIT:] == [429] * (2 * LIMIT), codes
    # another key of the same tier is not affected
    assert httpx.get(f"{a}/api/v1/prices/current/BTC", headers={"X-API-Key": KEYS["trading"]},
                     timeout=10).status_code == 200


@pytest.mark.slow
def test_a_cached_answer_costs_one_redis_command(two_workers):
    (a, _), client = two_workers
    key = {"X-API-Key": KEYS["trading"]}
    first = httpx.get(f"{a}/api/v1/prices/current/ETH", headers=key, timeout=10)
    assert first.status_code == 200 and first.headers["x-cache"] == "miss"
    client.config_resetstat()
    for _ in range(5):
        r = httpx.get(f"{a}/api/v1/prices/current/ETH", headers=key, timeout=10)
        assert r.status_code == 200 and r.headers["x-cache"] == "hit" and r.content == first.content
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    calls = {name: n for name, n in calls.items() if not name.startswith(("config", "info"))}
    # One script call per answer (Redis counts the commands it runs inside: the limit's INCR, the
    # generation's and the entry's GET); before issue 23: the limiter's script, then an MGET.
    assert calls == {"evalsha": 5, "incr": 5, "get": 10}, calls
    metrics = httpx.get(f"{a}/metrics", timeout=10).text  # counted under the route, as FastAPI's answers are
    assert re.search(r'^crypto_api_requests_total\{method="GET",route="/api/v1/prices/current/\{symbol\}",'
                     r'status="200"\} ([0-9.]+)$', metrics, re.M), metrics[-3000:]
    assert re.search(r'^crypto_api_cache_lookups_total\{endpoint="prices_current",result="hit"\} 5\.0$', metrics, re.M)


@pytest.mark.slow
def test_concurrent_requests_for_an_invalidated_entry_are_computed_once(two_workers):
    (a, b), _ = two_workers
    key = {"X-API-Key": KEYS["trading"]}
    for base in (a, b):
        assert httpx.get(f"{base}/api/v1/prices/current/BTC", headers=key, timeout=10).status_code == 200
    bumped = httpx.post(f"{a}/api/v1/admin/cache/invalidate", params={"dataset": "price_observations"},
                        headers={"X-API-Key": KEYS["admin"]}, timeout=10)
    assert bumped.status_code == 200
    before = _computations(a, "prices_current") + _computations(b, "prices_current")
    n = 24
    barrier = threading.Barrier(n)
    answers: list = [None] * n

    def one(i: int) -> None:
        with httpx.Client(timeout=20) as http:
            barrier.wait()
            r = http.get(f"{a if i % 2 else b}/api/v1/prices/current/BTC", headers=key)
            answers[i] = (r.status_code, r.headers.get("x-cache"), r.content)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    after = _computations(a, "prices_current") + _computations(b, "prices_current")
    assert all(answer is not None and answer[0] == 200 for answer in answers), answers
    assert after - before == 1, (before, after, [x[1] for x in answers])
    assert len({x[2] for x in answers}) == 1  # everyone got the one computed body
