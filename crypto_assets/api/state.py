"""Everything the routes share, built once per app: settings, Redis link, cache, limits, keys, feed."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import time

import pandas as pd
from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from crypto_assets.api import queries, render
# PENDING_LIMIT: where the auth dependency leaves a key's rate-limit hit for `respond` to count in
# its one Redis round trip (auth.py, `require(..., deferred=True)`); `(tier, key_id)`, None once counted.
from crypto_assets.api.auth import FAST_LOOKUP, PENDING_LIMIT, KeyRing, too_many
from crypto_assets.api.cache import ResponseCache
from crypto_assets.api.feed import PriceFeed
from crypto_assets.api.metrics import ApiMetrics
from crypto_assets.api.ratelimit import RateLimits
from crypto_assets.api.redis_link import RedisLink
from crypto_assets.api.settings import TOKEN_SECRET_ENV, ApiSettings

SYMBOLS_HINT = "GET /api/v1/symbols lists the symbols this API serves (the coin_universe table)"
log = logging.getLogger(__name__)

# Passed to `respond` in place of the current time: replaced by `pd.Timestamp.now(tz="UTC")` only
# when the response is computed (a cache hit never needs the time).
NOW = object()


_FROZEN: set[str] = set()  # heap freezes done in this process ("startup", "first-computation")


def freeze_heap_once(moment: str) -> None:
    """gc.collect(); gc.freeze() once per process and moment (a process serves one app; tests
    build many and need not pay a full collection for each)."""
    if moment in _FROZEN:
        return
    _FROZEN.add(moment)
    gc.collect()
    gc.freeze()


def _quiet(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: no "exception was never retrieved" when nobody joined


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
        self._cache_children: dict[tuple[str, str], object] = {}
        self._inflight: dict[str, asyncio.Future] = {}  # cache key -> its computation in this process
        self._refreeze = settings.freeze_heap  # once more after the first computation (lazy imports)

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

    async def respond(self, request, endpoint: str, dataset: str, params: dict, compute, *args) -> Response:
        """The cached response for (endpoint, params) if its dataset has not changed since,
        else `compute(*args)` run in a worker thread, cached for the endpoint's TTL.

        One Redis round trip on a hit: the caller's pending rate-limit hit (auth.py) is counted
        by the same script that reads the entry (cache.LOOKUP). On a miss or an expired entry one
        request computes (single-flight): in this process others join its computation; in other
        workers they get the stale entry (`X-Cache: stale`) or wait for the stored result."""
        pending = request.scope.get(PENDING_LIMIT) if request is not None else None
        window = None
        if pending is not None:
            request.scope[PENDING_LIMIT] = None  # counted here, whatever happens next
            window = self.limits.window(*pending)
        key = self.cache.key(endpoint, params)
        lock_s = self.settings.cache_lock_s
        fast = request.scope.pop(FAST_LOOKUP, None) if request is not None else None
        if fast is not None and fast[0] == key and pending is None:
            found = fast[1]  # fastpath.py looked it up (and counted the hit): a miss
        else:
            found = await self.cache.lookup(dataset, key, window, lock_s)
        if found is None and pending is not None:  # no Redis: the hit is counted in this process
            self._enforce(await self.limits.hit_key_in_memory(*pending))
        elif found is not None and found.state == "over_limit":
            self._enforce(self.limits.decided(window, found.hits, found.retry_after_s))
        if found is not None and (found.state == "hit" or (found.state == "stale" and not found.locked)):
            self._count_cache(endpoint, found.state)  # stale: another request holds the lock and recomputes
            return Response(found.body, media_type="application/json", headers={"X-Cache": found.state})
        if found is not None and not found.locked and key not in self._inflight:
            # Another worker is computing it: wait for its result (or take over the lock).
            found = await self.cache.wait_for_other(dataset, key, lock_s) or found
            if found.state in ("hit", "stale"):
                self._count_cache(endpoint, "hit")
                return Response(found.body, media_type="application/json", headers={"X-Cache": "hit"})
        result = "bypass" if found is None else "miss"
        running = self._inflight.get(key)
        if running is not None:  # this process computes it already: join that computation
            self._count_cache(endpoint, "shared" if found is not None else "bypass")
            body = await asyncio.shield(running)
            if found is not None and found.locked:
                await self.cache.store(key, found, None, 0, 0)  # release the lock taken meanwhile
            return Response(body, media_type="application/json", headers={"X-Cache": result})
        self._count_cache(endpoint, result)
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_quiet)
        self._inflight[key] = future
        try:
            self.metrics.computations.labels(endpoint).inc()
            call = [pd.Timestamp.now(tz="UTC") if a is NOW else a for a in args]
            body = render.dumps(await run_in_threadpool(compute, *call))
        except BaseException as exc:
            if not future.done():
                if isinstance(exc, asyncio.CancelledError):  # the client left: those joined see it cancelled
                    future.cancel()
                else:
                    future.set_exception(exc)
            if found is not None:
                await self.cache.store(key, found, None, 0, 0)  # release the lock: others may compute
            raise
        else:
            future.set_result(body)
            if found is not None:
                await self.cache.store(key, found, body, self.settings.cache_ttl_s.get(endpoint, 10.0),
                                       self.settings.cache_stale_s)
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        if self._refreeze:
            self._refreeze = False
            freeze_heap_once("first-computation")  # what it imported (pyarrow, deltalake) stays out of the GC too
        return Response(body, media_type="application/json", headers={"X-Cache": result})

    def _count_cache(self, endpoint: str, result: str) -> None:
        child = self._cache_children.get((endpoint, result))
        if child is None:
            child = self._cache_children[(endpoint, result)] = self.metrics.cache.labels(endpoint, result)
        child.inc()

    def _enforce(self, decision) -> None:
        if not decision.allowed:
            self.metrics.rate_limited.labels("key").inc()
            raise too_many(decision)

    @staticmethod
    def now() -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")
