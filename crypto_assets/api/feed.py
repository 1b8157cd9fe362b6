"""The live price feed behind `WS /ws/prices`.

One hub per API process, started with the app:
- **redis mode**: subscribed to the channel `crypto_assets.api.pubsub.publish_price_observations`
  publishes on after each price partition write; messages are fanned out to the connected
  WebSocket clients.
- **polling mode** (Redis unset, down, or refusing our password): every `ws_poll_interval_s`
  the hub reads the last `ws_poll_lookback_s` of `price_observations` from the warehouse and
  pushes observations newer than what it pushed before. It retries Redis after each back-off.

In both modes the hub keeps, per symbol, the newest `observed_at` it pushed and only pushes
newer observations: re-written partitions and backfills are not pushed twice or out of order.
Delivery is best effort (a client that does not keep up loses messages; a switch between
modes can drop or repeat a few rows): clients needing completeness backfill with
`/api/v1/prices/historical`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import pandas as pd
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from crypto_assets.api import render
from crypto_assets.api.pubsub import PRICE_DATASET, PRICE_FIELDS, price_channel
from crypto_assets.api.redis_link import REDIS_ERRORS, RedisLink
from crypto_assets.loading import load

log = logging.getLogger(__name__)

QUEUE_MESSAGES = 1000  # per client; beyond that its messages are dropped (and counted)


@dataclass(eq=False)
class Subscriber:
    symbols: frozenset[str] | None  # None: every symbol
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_MESSAGES))
    dropped: int = 0


class PriceFeed:
    def __init__(self, link: RedisLink, prefix: str, warehouse_url: str | None, *,
                 poll_interval_s: float, lookback_s: float, connect_timeout_s: float):
        self.link = link
        self.channel = price_channel(prefix)
        self.warehouse_url = warehouse_url
        self.poll_interval_s = poll_interval_s
        self.lookback = pd.Timedelta(seconds=lookback_s)
        # A client of its own: a subscribed connection waits indefinitely for messages, so it
        # must not carry the short read timeout of the request path.
        self.client = (aioredis.Redis.from_url(link.url, socket_connect_timeout=connect_timeout_s,
                                               health_check_interval=10) if link.url else None)
        self.mode = "starting"
        self.subscribers: set[Subscriber] = set()
        self.pushed: dict[str, pd.Timestamp] = {}  # newest observed_at pushed, per symbol
        self.floor: pd.Timestamp | None = None  # polling: symbols never pushed start after this
        self.ready = asyncio.Event()
        self._poll_lock = asyncio.Lock()

    # -- clients ----------------------------------------------------------------------------

    async def subscribe(self, symbols: frozenset[str] | None) -> Subscriber:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout=5)
        sub = Subscriber(symbols)
        self.subscribers.add(sub)
        if self.mode == "polling" and self.floor is None:
            await self._initialize()  # the client gets only what lands after it connected
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def _dispatch(self, rows: list[dict]) -> int:
        fresh = []
        for row in rows:
            symbol, observed = row.get("symbol"), row.get("observed_at")
            if not symbol or not observed:
                continue
            observed = pd.Timestamp(observed)
            last = self.pushed.get(symbol, self.floor)
            if last is not None and observed <= last:
                continue
            self.pushed[symbol] = observed
            fresh.append(row)
        for sub in list(self.subscribers):
            mine = fresh if sub.symbols is None else [r for r in fresh if r["symbol"] in sub.symbols]
            if not mine:
                continue
            try:
                sub.queue.put_nowait({"type": PRICE_DATASET, "mode": self.mode, "rows": mine})
            except asyncio.QueueFull:
                sub.dropped += len(mine)
        return len(fresh)

    # -- the hub loop -------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            if self.client is not None and self.link.available:
                try:
                    await self._listen()
                except REDIS_ERRORS as exc:
                    self.link.failed(exc)
            if self.mode != "polling":
                self.mode, self.floor = "polling", None
            self.ready.set()
            try:
                await self._poll()
            except Exception:  # the warehouse is down: try again next tick
                log.exception("price feed: polling the warehouse failed")
            await asyncio.sleep(self.poll_interval_s)

    async def _listen(self) -> None:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            self.mode, self.floor = "redis", None
            self.link.succeeded()
            self.ready.set()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                try:
                    rows = render.loads(message["data"])["rows"]
                except (ValueError, KeyError, TypeError):
                    log.warning("price feed: ignoring a malformed message on %s", self.channel)
                    continue
                self._dispatch(rows)
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()

    async def _read_recent(self, since: pd.Timestamp) -> pd.DataFrame:
        frame = await run_in_threadpool(load, PRICE_DATASET, since, None, columns=list(PRICE_FIELDS),
                                        warehouse_url=self.warehouse_url)
        return frame.loc[:, list(PRICE_FIELDS)].sort_values(["observed_at", "symbol"], kind="stable")

    async def _initialize(self) -> None:
        """Polling: take what the warehouse holds now as already pushed."""
        async with self._poll_lock:
            now = pd.Timestamp.now(tz="UTC")
            latest = (await self._read_recent(now - self.lookback)).groupby("symbol")["observed_at"].max()
            self.pushed.update(latest.to_dict())
            self.floor = latest.max() if len(latest) else now - self.lookback

    async def _poll(self) -> None:
        if not self.subscribers:
            self.floor = None  # nobody listens: the next subscriber starts from "now" again
            return
        if self.floor is None:
            await self._initialize()
            return
        async with self._poll_lock:
            now = pd.Timestamp.now(tz="UTC")
            since = max(now - self.lookback, min([self.floor, *self.pushed.values()]))
            self._dispatch(render.records(await self._read_recent(since)))

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.client.aclose()
