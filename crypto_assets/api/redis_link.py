"""One async Redis client shared by the cache, the rate limiter and the price feed.

Redis is optional for serving: a failed call marks the link down for `retry_s` seconds
(a small circuit breaker), during which callers skip Redis instead of paying a timeout on
every request. Nothing here connects at construction, so a missing, password-protected or
password-less Redis never stops the API from starting.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from crypto_assets.warehouse.store import redact_url

log = logging.getLogger(__name__)

# Errors that mean "Redis is not usable right now" (refused, timeout, NOAUTH, wrong password).
REDIS_ERRORS = (RedisError, OSError)


def describe_redis_url(url: str | None) -> str | None:
    """The URL with its password masked, for logs and /ready."""
    return redact_url(url) if url else None


class RedisLink:
    def __init__(self, url: str | None, *, timeout_s: float = 0.5, retry_s: float = 5.0):
        self.url = url
        self.retry_s = retry_s
        self.client = (
            aioredis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
            if url else None
        )
        self._down_until = 0.0
        self.last_error: str | None = None

    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def available(self) -> bool:
        """Worth trying now: configured and not inside the back-off after a failure."""
        return self.client is not None and time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        detail = f"{type(exc).__name__}: {exc}"[:200]
        if self.last_error != detail:
            log.warning("Redis %s unavailable (%s); serving without it for %.0fs",
                        describe_redis_url(self.url), detail, self.retry_s)
        self.last_error = detail
        self._down_until = time.monotonic() + self.retry_s

    def succeeded(self) -> None:
        self.last_error = None

    async def check(self) -> dict:
        """Ping now (ignoring the back-off) and report the state for /ready."""
        if self.client is None:
            return {"state": "not_configured", "detail": "REDIS_URL is not set: no cache, per-process rate limits"}
        try:
            await self.client.ping()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return {"state": "unavailable", "url": describe_redis_url(self.url), "detail": self.last_error}
        self.succeeded()
        self._down_until = 0.0
        return {"state": "ok", "url": describe_redis_url(self.url)}

    async def close(self) -> None:
        if self.client is not None:
            try:
                await self.client.aclose()
            except REDIS_ERRORS:
                pass
