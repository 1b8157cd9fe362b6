"""Everything the routes share, built once per app: settings, Redis link, cache, limits, keys, feed."""

from __future__ import annotations

import logging
import secrets
import time

import pandas as pd
from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from crypto_assets.api import queries, render
from crypto_assets.api.auth import KeyRing
from crypto_assets.api.cache import ResponseCache
from crypto_assets.api.feed import PriceFeed
from crypto_assets.api.metrics import ApiMetrics
from crypto_assets.api.ratelimit import RateLimits
from crypto_assets.api.redis_link import RedisLink
from crypto_assets.api.settings import TOKEN_SECRET_ENV, ApiSettings

SYMBOLS_HINT = "GET /api/v1/symbols lists the symbols this API serves (the coin_universe table)"
log = logging.getLogger(__name__)


class ApiState:
    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self.link = RedisLink(settings.redis_url, timeout_s=settings.redis_timeout_s, retry_s=settings.redis_retry_s)
        self.cache = ResponseCache(self.link, settings.redis_prefix)
        self.limits = RateLimits(self.link, settings.redis_prefix, dict(settings.rate_limits),
                                 settings.auth_failure_limit, timeout_s=settings.redis_timeout_s)
        self.keyring = KeyRing(settings.api_keys)
        self.feed = PriceFeed(self.link, settings.redis_prefix, settings.warehouse_url,
                              poll_interval_s=settings.ws_poll_interval_s, lookback_s=settings.ws_poll_lookback_s,
                              connect_timeout_s=settings.redis_timeout_s)
        self.metrics = ApiMetrics()
        self.metrics.watch_feed(self.feed)
        self.token_secret = settings.token_secret or secrets.token_bytes(32)
        if settings.token_secret is None:
            log.warning("%s is not set: page tokens are signed with a random secret of this process, so they stop "
                        "working after a restart and in other processes (set it when running several workers or "
                        "replicas behind one Redis cache)", TOKEN_SECRET_ENV)
        self._universe: frozenset[str] = frozenset()
        self._universe_read_at = float("-inf")

    @property
    def warehouse_url(self) -> str | None:
        return self.settings.warehouse_url

    async def known_symbols(self) -> frozenset[str]:
        """Symbols of coin_universe, re-read at most every `universe_ttl_s` (in this process)."""
        if time.monotonic() - self._universe_read_at > self.settings.universe_ttl_s or not self._universe:
            frame = await run_in_threadpool(queries.universe, self.warehouse_url)
            self._universe = frozenset(frame.symbol.dropna())
            self._universe_read_at = time.monotonic()
        return self._universe

    async def check_symbol(self, symbol: str) -> str:
        symbol = symbol.upper()
        known = await self.known_symbols()
        if symbol not in known:
            if not known:
                raise HTTPException(404, f"unknown symbol {symbol!r}: the coin universe is empty "
                                         "(materialize the coin_universe asset first)")
            raise HTTPException(404, f"unknown symbol {symbol!r}: {SYMBOLS_HINT}")
        return symbol

    async def respond(self, endpoint: str, dataset: str, params: dict, compute, *args) -> Response:
        """The cached response for (endpoint, params) if its dataset has not changed since,
        else `compute(*args)` run in a worker thread, cached for the endpoint's TTL."""
        key = self.cache.key(endpoint, params)
        body, generation = await self.cache.get(dataset, key)
        result = "hit" if body is not None else "miss" if generation is not None else "bypass"
        self.metrics.cache.labels(endpoint, result).inc()
        if body is not None:
            return Response(body, media_type="application/json", headers={"X-Cache": "hit"})
        body = render.dumps(await run_in_threadpool(compute, *args))
        await self.cache.put(key, generation, body, self.settings.cache_ttl_s.get(endpoint, 10.0))
        return Response(body, media_type="application/json",
                        headers={"X-Cache": "miss" if generation is not None else "bypass"})

    @staticmethod
    def now() -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")
