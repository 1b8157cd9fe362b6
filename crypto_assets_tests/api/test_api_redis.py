"""Redis: cache hits and invalidation on a new partition; Redis with and without a password;
Redis down or refusing us -> the API still serves from the warehouse and /ready says degraded."""

from __future__ import annotations

import pandas as pd
import pytest
import redis
from fastapi.testclient import TestClient

from crypto_assets.api import create_app
from crypto_assets.api.pubsub import generation_key, publish_price_observations
from crypto_assets.tables import table
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.api.api_support import (
    REDIS_URL,
    free_port,
    frame_for,
    headers,
    password_redis,
    redis_prefix,
    seed,
    settings,
)

RO = headers("readonly")
PRICES = table("price_observations")


def write_new_price(url: str, now: pd.Timestamp, price: float) -> pd.DataFrame:
    """A re-materialized current hour whose newest BTC observation is `price` (test data)."""
    hour = now.floor("h")
    existing = open_warehouse(url).read(PRICES, hour, hour + pd.Timedelta("1h"))
    newest = frame_for(PRICES, 1, symbol="BTC", observed_at=[now], price_usd=price, ingested_at=now)
    frame = pd.concat([existing[existing.observed_at < now], newest], ignore_index=True)
    open_warehouse(url).replace_window(PRICES, frame, hour, hour + pd.Timedelta("1h"))
    return frame


def test_cached_response_is_dropped_when_a_price_partition_is_published(sqlite_url):
    seed(sqlite_url)
    with redis_prefix() as prefix, TestClient(create_app(settings(sqlite_url, REDIS_URL, prefix))) as c:
        first = c.get("/api/v1/prices/current/BTC", headers=RO)
        again = c.get("/api/v1/prices/current/BTC", headers=RO)
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
        assert again.json() == first.json()

        now = pd.Timestamp.now(tz="UTC")
        frame = write_new_price(sqlite_url, now, 123456.75)
        # Written but not yet announced: the cache may still answer (bounded by the TTL).
        assert c.get("/api/v1/prices/current/BTC", headers=RO).headers["x-cache"] == "hit"
        publish_price_observations(frame, REDIS_URL, prefix=prefix)
        fresh = c.get("/api/v1/prices/current/BTC", headers=RO)
        assert fresh.headers["x-cache"] == "miss"
        assert fresh.json()["observation"]["price_usd"] == 123456.75
        assert redis.Redis.from_url(REDIS_URL).get(generation_key(prefix, "price_observations")) == b"1"


def test_redis_with_a_password(sqlite_url):
    seed(sqlite_url)
    with password_redis("pw-for-test") as port, redis_prefix() as prefix:
        good = settings(sqlite_url, f"redis://:pw-for-test@127.0.0.1:{port}/0", prefix)
        with TestClient(create_app(good)) as c:
            ready = c.get("/ready", headers=RO).json()  # the detailed answer, with the Redis URL
            assert ready["status"] == "ready" and ready["redis"]["state"] == "ok"
            assert "pw-for-test" not in str(ready)
            c.get("/api/v1/symbols", headers=RO)
            assert c.get("/api/v1/symbols", headers=RO).headers["x-cache"] == "hit"
        # The old gateway's failure: a password-protected Redis and a URL without the password.
        no_password = settings(sqlite_url, f"redis://127.0.0.1:{port}/0", prefix)
        with TestClient(create_app(no_password)) as c:
            r = c.get("/api/v1/prices/current/BTC", headers=RO)
            assert r.status_code == 200 and r.headers["x-cache"] == "bypass"
            ready = c.get("/ready", headers=RO).json()
            assert ready["status"] == "degraded" and ready["redis"]["state"] == "unavailable"
            assert "Authentication" in ready["redis"]["detail"] or "NOAUTH" in ready["redis"]["detail"]


def test_redis_without_a_password(sqlite_url):
    seed(sqlite_url)
    with redis_prefix() as prefix, TestClient(create_app(settings(sqlite_url, REDIS_URL, prefix))) as c:
        assert c.get("/ready").json()["redis"]["state"] == "ok"


@pytest.mark.parametrize("redis_url", ["down", None], ids=["redis-down", "no-redis"])
def test_api_serves_from_the_warehouse_without_redis(sqlite_url, redis_url):
    frames = seed(sqlite_url)
    if redis_url == "down":
        redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with TestClient(create_app(settings(sqlite_url, redis_url, "unused-prefix"))) as c:
        for _ in range(2):
            r = c.get("/api/v1/prices/current/ETH", headers=RO)
            assert r.status_code == 200 and r.headers["x-cache"] == "bypass"
        last_eth = frames["price_observations"].query("symbol == 'ETH'").price_usd.iloc[-1]
        assert r.json()["observation"]["price_usd"] == last_eth
        ready = c.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["redis"]["state"] == ("unavailable" if redis_url else "not_configured")
        assert ready.json()["feed"]["mode"] == "polling"


def test_publishing_without_redis_never_fails_the_writer():
    frame = frame_for(PRICES, 2, symbol="BTC", observed_at=[pd.Timestamp.now(tz="UTC")] * 2)
    assert publish_price_observations(frame, f"redis://127.0.0.1:{free_port()}/0") is None


def test_ready_is_503_when_the_warehouse_cannot_be_read(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'wh.sqlite'}"  # SQLite cannot create the file
    with redis_prefix() as prefix, TestClient(create_app(settings(url, REDIS_URL, prefix))) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["warehouse"]["state"] == "unavailable"
        assert c.get("/api/v1/symbols", headers=RO).status_code == 503
