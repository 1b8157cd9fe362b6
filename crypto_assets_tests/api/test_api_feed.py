"""WS /ws/prices: a subscriber receives observations after a price partition is written and
published (Redis pub/sub), or by warehouse polling when Redis is down; tiers apply."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest
from websockets.asyncio.client import connect

from crypto_assets.api import create_app
from crypto_assets.api.pubsub import publish_price_observations
from crypto_assets.tables import table
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.api.api_support import (
    KEYS,
    REDIS_URL,
    free_port,
    frame_for,
    live_server,
    redis_prefix,
    seed,
    settings,
)

PRICES = table("price_observations")


def write_partition(url: str, now: pd.Timestamp) -> pd.DataFrame:
    """The current hour re-written with one new BTC and one new ETH observation (test data)."""
    hour = now.floor("h")
    existing = open_warehouse(url).read(PRICES, hour, hour + pd.Timedelta("1h"))
    new = frame_for(PRICES, 2, symbol=["BTC", "ETH"], observed_at=[now, now], price_usd=[70001.5, 3501.25],
                    ingested_at=now)
    frame = pd.concat([existing, new], ignore_index=True)
    open_warehouse(url).replace_window(PRICES, frame, hour, hour + pd.Timedelta("1h"))
    return frame


async def _receive(ws, timeout: float = 10.0) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] != "heartbeat":
            return message


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_subscriber_gets_observations_published_after_a_partition_write(sqlite_url):
    seed(sqlite_url)
    with redis_prefix() as prefix, live_server(create_app(settings(sqlite_url, REDIS_URL, prefix))) as host:
        async def scenario():
            url = f"ws://{host}/ws/prices"
            async with connect(url, additional_headers={"X-API-Key": KEYS["trading"]}) as every, \
                    connect(f"{url}?symbols=eth&api_key={KEYS['trading']}") as eth_only:
                hello = await _receive(every)
                assert hello == {"type": "hello", "mode": "redis", "symbols": None}
                assert (await _receive(eth_only))["symbols"] == ["ETH"]
                now = pd.Timestamp.now(tz="UTC")
                frame = await asyncio.to_thread(write_partition, sqlite_url, now)
                receivers = await asyncio.to_thread(publish_price_observations, frame, REDIS_URL, prefix=prefix)
                assert receivers == 1  # one hub (this API process), fanning out to both clients
                got = await _receive(every)
                assert got["type"] == "price_observations" and got["mode"] == "redis"
                newest = {r["symbol"]: r for r in got["rows"] if pd.Timestamp(r["observed_at"]) == now}
                assert newest["BTC"]["price_usd"] == 70001.5 and newest["ETH"]["price_usd"] == 3501.25
                eth = await _receive(eth_only)
                assert {r["symbol"] for r in eth["rows"]} == {"ETH"}
                # The same partition published again brings nothing new: nothing is pushed twice.
                await asyncio.to_thread(publish_price_observations, frame, REDIS_URL, prefix=prefix)
                with pytest.raises(asyncio.TimeoutError):
                    await _receive(every, timeout=0.5)

        _run(scenario())


@pytest.mark.slow
def test_feed_falls_back_to_polling_the_warehouse_when_redis_is_down(sqlite_url):
    seed(sqlite_url)
    down = f"redis://127.0.0.1:{free_port()}/0"
    with live_server(create_app(settings(sqlite_url, down, "unused-prefix", ws_poll_interval_s=0.2))) as host:
        async def scenario():
            async with connect(f"ws://{host}/ws/prices", additional_headers={"X-API-Key": KEYS["admin"]}) as ws:
                assert (await _receive(ws))["mode"] == "polling"
                with pytest.raises(asyncio.TimeoutError):  # what was already there is not replayed
                    await _receive(ws, timeout=0.6)
                now = pd.Timestamp.now(tz="UTC")
                await asyncio.to_thread(write_partition, sqlite_url, now)
                got = await _receive(ws)
                assert got["mode"] == "polling"
                assert sorted((r["symbol"], r["price_usd"]) for r in got["rows"]) == [("BTC", 70001.5), ("ETH", 3501.25)]

        _run(scenario())


def test_feed_needs_a_trading_key(sqlite_url):
    seed(sqlite_url)
    with redis_prefix() as prefix, live_server(create_app(settings(sqlite_url, REDIS_URL, prefix))) as host:
        async def scenario():
            async with connect(f"ws://{host}/ws/prices", additional_headers={"X-API-Key": KEYS["readonly"]}) as ws:
                refusal = await _receive(ws)
                assert refusal["status"] == 403
                await ws.wait_closed()
                assert ws.close_code == 4403
            async with connect(f"ws://{host}/ws/prices?api_key={KEYS['trading']}&symbols=DOGE") as ws:
                assert (await _receive(ws))["status"] == 404
                await ws.wait_closed()
                assert ws.close_code == 4404

        _run(scenario())
