"""Helpers for the API tests: keys, settings, seeded warehouses (rows labelled source="test"),
Redis prefixes that are cleaned up, a password-protected redis-server, a live uvicorn server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import uuid

import numpy as np
import pandas as pd
import redis

from crypto_assets.api.settings import ApiKey, ApiSettings, hash_key
from crypto_assets.tables import table
from crypto_assets.warehouse.factory import open_warehouse

REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_SOURCE = "test"  # every seeded row says it is test data
KEYS = {"readonly": "test-key-readonly", "trading": "test-key-trading", "admin": "test-key-admin"}
SYMBOLS = ("BTC", "ETH", "WBTC")


def headers(tier: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[tier]}


def settings(warehouse_url: str, redis_url: str | None, prefix: str, **overrides) -> ApiSettings:
    values = dict(
        warehouse_url=warehouse_url, redis_url=redis_url, redis_prefix=prefix,
        api_keys=tuple(ApiKey(tier, hash_key(key)) for tier, key in KEYS.items()),
        rate_limits={"readonly": "1000/minute", "trading": "1000/minute", "admin": "10000/minute"},
        ws_poll_interval_s=0.2, redis_retry_s=0.5,
    )
    values.update(overrides)
    return ApiSettings(**values)


def frame_for(spec, n: int, **given) -> pd.DataFrame:
    """`n` rows with a deterministic value in every declared column, `given` columns overriding."""
    base = pd.Timestamp("2024-01-01", tz="UTC")
    data = {}
    for i, col in enumerate(spec.columns):
        if col.name in given:
            value = given[col.name]
            data[col.name] = list(value) if isinstance(value, (list, tuple, np.ndarray, pd.Series, pd.Index)) \
                else [value] * n
        elif col.kind == "float":
            data[col.name] = np.round(np.arange(n) * 0.5 + i + 0.125, 6)
        elif col.kind == "int":
            data[col.name] = np.arange(n) + i
        elif col.kind == "bool":
            data[col.name] = [bool((j + i) % 2) for j in range(n)]
        elif col.kind == "datetime":
            data[col.name] = [base + pd.Timedelta(minutes=j) for j in range(n)]
        elif col.kind == "date":
            data[col.name] = [(base + pd.Timedelta(days=j)).date() for j in range(n)]
        else:
            data[col.name] = [f"{col.name}-{j}" for j in range(n)]
    frame = pd.DataFrame(data)
    if "source" in frame:
        frame["source"] = TEST_SOURCE
    return frame


def hour_of(now: pd.Timestamp) -> pd.Timestamp:
    return now.floor("h")


def seed(warehouse_url: str, now: pd.Timestamp | None = None) -> dict[str, pd.DataFrame]:
    """A small warehouse around `now`: 3 symbols, the last 3 hours of data in every table."""
    now = now or pd.Timestamp.now(tz="UTC")
    wh = open_warehouse(warehouse_url)
    start = hour_of(now) - pd.Timedelta("3h")
    end = hour_of(now) + pd.Timedelta("1h")
    frames = {}

    frames["coin_universe"] = frame_for(table("coin_universe"), 3, symbol=list(SYMBOLS),
                                        coingecko_id=["bitcoin", "ethereum", "wrapped-bitcoin"], ingested_at=now)
    wh.replace_all(table("coin_universe"), frames["coin_universe"])

    times = pd.date_range(start, now - pd.Timedelta("1min"), freq="5min")
    rows = []
    for k, symbol in enumerate(SYMBOLS[:2]):
        rows += [{"symbol": symbol, "observed_at": t, "price_usd": 1000.0 * (k + 1) + i * 0.25 + 1e-9}
                 for i, t in enumerate(times)]
    prices = pd.DataFrame(rows)
    frames["price_observations"] = frame_for(table("price_observations"), len(prices), **prices,
                                             endpoint="coins/markets", ingested_at=now)
    wh.replace_window(table("price_observations"), frames["price_observations"], start, end)

    bars = pd.date_range(start, hour_of(now), freq="1h")
    ohlcv = pd.concat([
        frame_for(table("ohlcv_bars"), len(bars), symbol="BTC", bar_start=bars, bar_end=bars + pd.Timedelta("1h"),
                  interval="1h", method="resampled_observations"),
        frame_for(table("ohlcv_bars"), len(bars), symbol="BTC", bar_start=bars, bar_end=bars + pd.Timedelta("5min"),
                  interval="5min", method="resampled_observations"),
    ], ignore_index=True)
    frames["ohlcv_bars"] = ohlcv
    wh.replace_window(table("ohlcv_bars"), ohlcv, start, end)

    published = [now - pd.Timedelta(minutes=m) for m in (50, 40, 30, 20, 10)]
    mentions = ["BTC|ETH", "WBTC", "", "BTC", "ETH"]
    news = frame_for(table("news_articles"), 5, article_id=[f"a{i}" for i in range(5)], published_at=published,
                     symbols_mentioned=mentions, title=[f"test headline {i}" for i in range(5)])
    frames["news_articles"] = news
    wh.replace_window(table("news_articles"), news, start, end)

    sentiment = frame_for(
        table("sentiment_scores"), 6, item_id=["a0", "a0", "a1", "a3", "a4", "p1"],
        item_type=["news", "news", "news", "news", "news", "social"],
        model=["finbert", "vader", "finbert", "finbert", "finbert", "cryptobert"],
        label=["positive", "neutral", "negative", "positive", "negative", "positive"],
        score=[0.5, 0.1, -0.7, 0.9, -0.2, 0.3], confidence=[0.8, 0.6, 0.9, 0.95, 0.7, 0.6],
        published_at=[published[0], published[0], published[1], published[3], published[4], now - pd.Timedelta("30h")],
        symbols_mentioned=["BTC|ETH", "BTC|ETH", "WBTC", "BTC", "ETH", "BTC"],
    )
    frames["sentiment_scores"] = sentiment
    wh.replace_window(table("sentiment_scores"), sentiment, start - pd.Timedelta("2D"), end)

    technical = frame_for(table("technical_indicators"), len(bars), symbol="BTC", bar_start=bars,
                          bar_end=bars + pd.Timedelta("1h"), interval="1h")
    frames["technical_indicators"] = technical
    wh.replace_window(table("technical_indicators"), technical, start, end)

    features = pd.concat([
        frame_for(table("ml_features"), len(bars), symbol=symbol, bar_start=bars) for symbol in SYMBOLS[:2]
    ], ignore_index=True)
    frames["ml_features"] = features
    wh.replace_window(table("ml_features"), features, start, end)
    wh.dispose()
    return frames


@contextlib.contextmanager
def redis_prefix():
    """A key/channel prefix of its own on the shared Redis; its keys are deleted afterwards."""
    prefix = f"crypto-api-test-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def own_redis(password: str | None = None):
    """A throw-away redis-server on a free loopback port (requiring `password` when given), nothing
    kept on disk; yields its port once it answers, stopped afterwards."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (the machine's services include Redis)"
    port = free_port()
    auth = ["--requirepass", password] if password else []
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", *auth,
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def password_redis(password: str):
    """A throw-away redis-server on a free port that requires `password`; stopped afterwards."""
    return own_redis(password)


@contextlib.contextmanager
def api_process(env: dict, log_path, flags=()):
    """`python -m crypto_assets.cli api` on a free loopback port with `env`, its output in
    `log_path`; yields ("127.0.0.1:port", process) once /health answers; stopped (SIGINT, then
    kill) afterwards."""
    import signal
    import sys

    import httpx

    port = free_port()
    with open(log_path, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "crypto_assets.cli", "api", "--host", "127.0.0.1",
                                 "--port", str(port), *flags], env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the API server did not start"
            try:
                if httpx.get(f"http://{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextlib.contextmanager
def live_server(app, port: int | None = None):
    """The app under a real uvicorn on 127.0.0.1 (for WebSockets and the benchmark), on `port`
    or a free one."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
