"""Data API latency and throughput under a bounded local load: uvicorn (one worker, its own
process) on 127.0.0.1, an async httpx client here. Results go to benchmarks/results.json["api"].
Then (issue 23) wrk against the API and a bare route, at 1, 8 and 32 clients: results.json["api_speed"]
(`speed()` below; `--speed-only` runs just that).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_api.py [--speed-only]

Scenarios (targets from the task):
- cached `GET /api/v1/prices/current/BTC` (Redis hit): p99 <= 10 ms
- uncached `GET /api/v1/ml-features/bulk` for 10 symbols x 24 h (240 rows, every column):
  p99 <= 100 ms. Each request shifts `start` by a second (the same 240 rows), so none is a cache hit.

Inputs are SYNTHETIC (labelled source="synthetic" in the rows and in the results), written to
a temporary SQLite warehouse; Redis is the machine's (127.0.0.1:6379) under a throw-away prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import pandas as pd
import redis

from benchmarks._results import measured
from crypto_assets.api.server import new_key
from crypto_assets.tables import table
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.api.api_support import own_redis

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SYMBOLS = [f"SYN{i}" for i in range(10)]
CONCURRENCY = (1, 4)  # requests in flight: 1 = latency of one client, 4 = a small concurrent load


def synthetic_frame(spec, n: int, rng: np.random.Generator, **given) -> pd.DataFrame:
    data = {}
    for col in spec.columns:
        if col.name in given:
            data[col.name] = given[col.name]
        elif col.kind == "float":
            data[col.name] = rng.normal(100, 10, n)
        elif col.kind == "int":
            data[col.name] = rng.integers(0, 1000, n)
        elif col.kind == "bool":
            data[col.name] = rng.integers(0, 2, n).astype(bool)
        elif col.kind == "datetime":
            data[col.name] = [pd.Timestamp("2025-01-01", tz="UTC")] * n
        elif col.kind == "date":
            data[col.name] = [pd.Timestamp("2025-01-01").date()] * n
        else:
            data[col.name] = [f"{col.name}"] * n
    frame = pd.DataFrame(data)
    frame["source"] = "synthetic"
    return frame


def seed(url: str, now: pd.Timestamp) -> pd.Timestamp:
    rng = np.random.default_rng(7)
    wh = open_warehouse(url)
    wh.replace_all(table("coin_universe"), synthetic_frame(table("coin_universe"), len(SYMBOLS), rng, symbol=SYMBOLS,
                                                           ingested_at=[now] * len(SYMBOLS)))
    day_start = now.floor("h") - pd.Timedelta("24h")
    times = pd.date_range(day_start, now, freq="5min", inclusive="left")
    prices = synthetic_frame(table("price_observations"), len(times) * len(SYMBOLS), rng,
                             symbol=np.repeat(SYMBOLS, len(times)), observed_at=np.tile(times, len(SYMBOLS)))
    wh.replace_window(table("price_observations"), prices, day_start, now.floor("h") + pd.Timedelta("1h"))
    bars = pd.date_range(day_start, periods=24, freq="1h")
    feats = synthetic_frame(table("ml_features"), len(bars) * len(SYMBOLS), rng,
                            symbol=np.repeat(SYMBOLS, len(bars)), bar_start=np.tile(bars, len(SYMBOLS)))
    wh.replace_window(table("ml_features"), feats, day_start, day_start + pd.Timedelta("24h"))
    wh.dispose()
    return day_start


def start_server(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "crypto_assets.api.app:app_from_env", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"uvicorn did not start: {proc.stderr.read().decode()[-2000:]}")


async def load(client: httpx.AsyncClient, paths, max_requests: int, max_seconds: float, concurrency: int = 1) -> dict:
    """`max_requests` requests (or until `max_seconds`), `concurrency` in flight; latencies in ms."""
    latencies, server, statuses, caches = [], [], {}, {}
    queue = iter(enumerate(paths))
    stop_at = time.perf_counter() + max_seconds

    async def worker():
        for i, path in queue:
            if i >= max_requests or time.perf_counter() > stop_at:
                return
            t = time.perf_counter()
            r = await client.get(path)
            latencies.append((time.perf_counter() - t) * 1000)
            server.append(float(r.headers["server-timing"].split("dur=")[1]))
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            caches[r.headers.get("x-cache")] = caches.get(r.headers.get("x-cache"), 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    q = np.percentile(latencies, [50, 99])
    qs = np.percentile(server, [50, 99])
    return {"concurrency": concurrency, "requests": len(latencies), "seconds": round(elapsed, 2),
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(q[0]), 2), "p99_ms": round(float(q[1]), 2),
            "mean_ms": round(statistics.fmean(latencies), 2),
            "server_p50_ms": round(float(qs[0]), 2), "server_p99_ms": round(float(qs[1]), 2),
            "statuses": statuses, "x_cache": caches}


async def run(port: int, key: str, day_start: pd.Timestamp) -> dict:
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
        # The floor: /health touches neither keys, Redis nor the warehouse (client + uvicorn only).
        floor = await load(client, ["/health"] * 1000, 1000, 10)
        current = "/api/v1/prices/current/SYN3"
        await load(client, [current] * 100, 100, 10)  # warm-up (and fill the cache)
        cached = [await load(client, [current] * 3000, 3000, 15, c) for c in CONCURRENCY]
        symbols = ",".join(SYMBOLS)
        end = (day_start + pd.Timedelta("24h")).isoformat()

        def bulk_path(i: int) -> str:
            start = (day_start - pd.Timedelta(seconds=i + 1)).isoformat()
            return "/api/v1/ml-features/bulk?" + urlencode({"symbols": symbols, "start": start, "end": end})

        check = (await client.get(bulk_path(10**6))).json()
        assert check["count"] == 240 and check["next_page_token"] is None, check.get("count")
        await load(client, (bulk_path(10**7 + i) for i in range(20)), 20, 10)  # warm-up
        uncached = []
        for k, c in enumerate(CONCURRENCY):
            uncached.append(await load(client, (bulk_path(100_000 * k + i) for i in range(400)), 400, 25, c))
            assert uncached[-1]["x_cache"].get("hit") is None, uncached[-1]["x_cache"]
    return {"floor_health_no_auth": floor, "cached_prices_current": cached, "uncached_ml_features_bulk_10x24h": uncached,
            "bulk_response_bytes": len(httpx.get(f"http://127.0.0.1:{port}{bulk_path(10**8)}", headers=headers).content)}


def main() -> dict:
    prefix = f"crypto-api-bench-{uuid.uuid4().hex[:8]}"
    key, entry = new_key("admin")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"delta://{Path(tmp) / 'warehouse'}"  # the embedded default
        now = pd.Timestamp.now(tz="UTC")
        day_start = seed(url, now)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CRYPTO_WAREHOUSE_URL": url, "REDIS_URL": REDIS_URL,
               "CRYPTO_API_KEYS": entry, "CRYPTO_API_REDIS_PREFIX": prefix,
               "CRYPTO_API_RATE_LIMITS": "admin=1000000/minute"}
        port = 18000 + os.getpid() % 1000
        proc = start_server(env, port)
        try:
            numbers = asyncio.run(run(port, key, day_start))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            client = redis.Redis.from_url(REDIS_URL)
            stale = list(client.scan_iter(match=f"{prefix}*"))
            if stale:
                client.delete(*stale)
    cached = numbers["cached_prices_current"][0]
    bulk = numbers["uncached_ml_features_bulk_10x24h"][0]
    numbers.update({
        "inputs": "SYNTHETIC: 10 generated symbols, 24 h of 5-min price observations and 240 ml_features rows "
                  f"({len(table('ml_features').columns)} columns, the declared ml_features schema), "
                  "rows labelled source='synthetic', temporary Delta Lake warehouse (the embedded default)",
        "setup": f"uvicorn 1 worker in a subprocess, async httpx client, {CONCURRENCY} requests in flight, "
                 "Redis 127.0.0.1:6379, bounded request counts and times",
        "targets": {"cached_prices_current_p99_ms": 10, "uncached_ml_features_bulk_p99_ms": 100},
        "meets_targets_at_concurrency_1": cached["p99_ms"] <= 10 and bulk["p99_ms"] <= 100,
    })
    return numbers


# -- issue 23: wrk against the bare route -------------------------------------------------------------
#
# The bare route is the least a cached endpoint must do: check an API key's hash and GET one Redis
# key. It runs in its own uvicorn (one worker) beside the API (one worker); wrk loads one of them at
# a time, each project run right after a bare run at the same concurrency, so both see the same
# machine. Ratios: project / bare requests/s, project p99 / bare p99. Results: results.json["api_speed"].

WRK_CLIENTS = (1, 8, 32)
WRK_SECONDS = int(os.environ.get("BENCH_API_WRK_SECONDS", "5"))
BARE_KEY = "crypto-api-bench:bare"


def bare_app():
    """`uvicorn --factory benchmarks.bench_api:bare_app`: GET /bare checks X-API-Key's sha256 and
    answers one Redis GET."""
    import hmac

    import redis.asyncio as aioredis
    from fastapi import FastAPI, Header, HTTPException
    from fastapi.responses import Response

    from crypto_assets.api.settings import hash_key

    app = FastAPI()
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    digest = os.environ["BARE_KEY_SHA256"]

    @app.get("/bare")
    async def bare(x_api_key: str | None = Header(None)):
        if not x_api_key or not hmac.compare_digest(hash_key(x_api_key), digest):
            raise HTTPException(401)
        return Response(await client.get(BARE_KEY), media_type="application/json")

    return app


def _uvicorn(factory: str, env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{factory} did not start")


# Every request a new `start` (unix seconds, one less each time): never a cache hit, the same rows.
VARYING = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, string.format("%s", %d - counter))
end
"""


def _wrk(url: str, key: str, clients: int, script: str | None = None, seconds: int = WRK_SECONDS) -> dict:
    import re
    import shutil

    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    args = [wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "--latency", "-H", f"X-API-Key: {key}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        if script:
            fh.write(script)
    try:
        if script:
            args += ["-s", fh.name]
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(fh.name)

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"clients": clients, "requests_per_s": rps, "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else None}


def speed() -> dict:
    key, entry = new_key("admin")
    loads = [os.getloadavg()[0]]
    stack = contextlib.ExitStack()
    redis_url = f"redis://127.0.0.1:{stack.enter_context(own_redis())}/0"  # a redis-server of its own
    procs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"delta://{Path(tmp) / 'warehouse'}"
            now = pd.Timestamp.now(tz="UTC")
            day_start = seed(url, now)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "CRYPTO_WAREHOUSE_URL": url, "REDIS_URL": redis_url,
                   "CRYPTO_API_KEYS": entry, "CRYPTO_API_RATE_LIMITS": "admin=100000000/minute",
                   "CRYPTO_API_TOKEN_SECRET": "b" * 40, "CRYPTO_API_ACCESS_LOG": "0",
                   "BARE_KEY_SHA256": entry.split(":", 1)[1]}
            api_port, bare_port = 19000 + os.getpid() % 500, 19500 + os.getpid() % 500
            procs.append(_uvicorn("crypto_assets.api.app:app_from_env", env, api_port))
            procs.append(_uvicorn("benchmarks.bench_api:bare_app", env, bare_port))
            api, bare = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{bare_port}"
            cached_path = "/api/v1/prices/current/SYN3"
            warm = httpx.get(api + cached_path, headers={"X-API-Key": key}, timeout=30)
            assert warm.status_code == 200, warm.text
            redis.Redis.from_url(redis_url).set(BARE_KEY, warm.content)  # the bare route serves the same body
            end = int((day_start + pd.Timedelta("24h")).timestamp())
            hist = f"/api/v1/prices/historical/SYN3?start=%d&end={end}"
            bulk = f"/api/v1/ml-features/bulk?symbols={','.join(SYMBOLS)}&start=%d&end={end}"
            base = int(day_start.timestamp())
            for path in (hist, bulk):  # warm-up: imports, the first Delta reads
                for i in range(5):
                    r = httpx.get(api + path % (base - 10**7 - i), headers={"X-API-Key": key}, timeout=60)
                    assert r.status_code == 200, r.text
            _wrk(bare + "/bare", key, 8, seconds=2)
            _wrk(api + cached_path, key, 8, seconds=2)
            runs = []
            for k, clients in enumerate(WRK_CLIENTS):
                b = _wrk(bare + "/bare", key, clients)
                c = _wrk(api + cached_path, key, clients)
                h = _wrk(api + hist % 0, key, clients, VARYING % (hist, base - 10**6 * (k + 1)))
                u = _wrk(api + bulk % 0, key, clients, VARYING % (bulk, base - 10**6 * (k + 20)))
                uc = _wrk(api + bulk % (base - 1), key, clients)  # one query again and again: cached
                loads.append(os.getloadavg()[0])
                runs.append({"clients": clients, "bare": b, "cached_prices_current": c,
                             "uncached_prices_historical": h, "uncached_ml_features_bulk": u,
                             "cached_ml_features_bulk": uc,
                             "cached_vs_bare_rps": round(c["requests_per_s"] / b["requests_per_s"], 3),
                             "cached_vs_bare_p99": round(c["p99_ms"] / b["p99_ms"], 3)})
            # The uncached historical runs must have been misses: the API's own cache metric says so (the
            # bulk endpoint also served the cached runs; its uncached runs shift `start` the same way).
            import re

            text = httpx.get(api + "/metrics", timeout=10).text
            hits = {e: sum(float(v) for v in re.findall(
                rf'^crypto_api_cache_lookups_total{{endpoint="{e}",result="(?:hit|stale|shared)"}} (\S+)$', text, re.M))
                for e in ("prices_historical",)}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        stack.close()
    cpus = os.cpu_count() or 1
    goals = {
        "cached_rps_ratio_min": 0.8, "cached_p99_ratio_max": 1.5, "uncached_historical_rps_min": 500,
        "bulk_p99_ms_at_32_max": 200,
    }
    met = {
        "cached_rps_ratio": all(r["cached_vs_bare_rps"] >= 0.8 for r in runs),
        "cached_p99_ratio": all(r["cached_vs_bare_p99"] <= 1.5 for r in runs),
        "uncached_historical_rps": max(r["uncached_prices_historical"]["requests_per_s"] for r in runs) >= 500,
        "bulk_p99_at_32": runs[-1]["uncached_ml_features_bulk"]["p99_ms"] <= 200
        and not runs[-1]["uncached_ml_features_bulk"]["socket_errors"],
        "bulk_p99_at_32_when_cached": runs[-1]["cached_ml_features_bulk"]["p99_ms"] <= 200,
    }
    busy = max(loads) > 0.5 * cpus
    return {
        "runs": runs, "goals": goals, "goals_met": met, "uncached_runs_cache_hits": hits,
        "load_average": {"before": loads[0], "after_each_concurrency": loads[1:], "cpus": cpus},
        "note": (f"other work shared the {cpus} cores (load average up to {max(loads):.1f}): absolute numbers are "
                 "low and ratios noisy" if busy else "the machine was otherwise quiet"),
        "setup": f"wrk -t1, {WRK_SECONDS} s per run, 1 uvicorn worker each for the API and the bare route (FastAPI, "
                 "sha256 key check + one Redis GET), a redis-server of its own, access log off, a temporary Delta "
                 "warehouse of SYNTHETIC rows (10 symbols, 24 h of 5-min prices, 240 ml_features rows); uncached "
                 "runs shift `start` by a second per request (never a cache hit, the same rows)",
    }


if __name__ == "__main__":
    import json

    if "--speed-only" not in sys.argv:
        with measured("api") as result:
            result.update(main())
            print(json.dumps(result, indent=2))
    with measured("api_speed") as result:
        result.update(speed())
        print(json.dumps(result, indent=2))
