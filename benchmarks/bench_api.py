"""Data API latency and throughput under a bounded local load: uvicorn (one worker, its own
process) on 127.0.0.1, an async httpx client here. Results go to benchmarks/results.json["api"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_api.py

Scenarios (targets from the task):
- cached `GET /api/v1/prices/current/BTC` (Redis hit): p99 <= 10 ms
- uncached `GET /api/v1/ml-features/bulk` for 10 symbols x 24 h (240 rows, every column):
  p99 <= 100 ms. Each request shifts `start` by a second (the same 240 rows), so none is a cache hit.

Inputs are SYNTHETIC (labelled source="synthetic" in the rows and in the results), written to
a temporary SQLite warehouse; Redis is the machine's (127.0.0.1:6379) under a throw-away prefix.
"""

from __future__ import annotations

import asyncio
import os
import platform
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

from benchmarks._results import record
from crypto_assets.api.server import new_key
from crypto_assets.tables import table
from crypto_assets.warehouse.store import Warehouse

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
    wh = Warehouse(url)
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
        "load_average_during_run": os.getloadavg()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}",
    })
    return numbers


if __name__ == "__main__":
    import json

    result = main()
    record("api", result)
    print(json.dumps(result, indent=2))
