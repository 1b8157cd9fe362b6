"""One async Redis connection pool shared by the cache, the rate limiter and the price feed.

Redis is optional for serving: a failed call opens the link's one circuit breaker, during
which callers skip Redis instead of paying a timeout on every request. While it is open, one
request per `retry_s` seconds tries Redis (half-open); its first success closes the breaker.
Nothing here connects at construction, so a missing, password-protected or password-less
Redis never stops the API from starting.

A Redis restart leaves every pooled connection stale. Three things keep that from turning
into minutes of cache bypasses (issue 19): a command that fails with a connection error is
retried once on a fresh connection (redis-py `Retry`), so a stale connection costs a
reconnect, not a failure; opening the breaker drops every idle pooled connection at once;
and a failure while the breaker is already open does not extend it, so stale connections
failing one after another cannot keep it open. Recovery after a restart therefore takes at
most `retry_s` seconds (measured in crypto_assets_tests/api/test_integrity_redis_restart.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from crypto_assets.warehouse.store import redact_url

log = logging.getLogger(__name__)

# Errors that mean "Redis is not usable right now" (refused, timeout, NOAUTH, wrong password).
REDIS_ERRORS = (RedisError, OSError)


def describe_redis_url(url: str | None) -> str | None:
    """The URL with its password masked, for logs and /ready."""
    return redact_url(url) if url else None


# A command that fails with a connection error (a stale pooled connection after a restart, a
# reset) is retried this many times on a fresh connection. Timeouts are not retried: the
# command may have run, and a blackholed Redis would cost each request several timeouts.
RECONNECT_RETRIES = 1
HEALTH_CHECK_S = 10  # a pooled connection idle longer than this is PINGed before its next command


def connection_pool(url: str, timeout_s: float) -> aioredis.ConnectionPool:
    return aioredis.ConnectionPool.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), RECONNECT_RETRIES,
                    supported_errors=(RedisConnectionError,)),
        health_check_interval=HEALTH_CHECK_S,
    )


class RedisLink:
    def __init__(self, url: str | None, *, timeout_s: float = 0.5, retry_s: float = 5.0):
        self.url = url
        self.retry_s = retry_s
        # One pool for the cache, the rate limiter (ratelimit.py passes it to `limits`) and /ready.
        self.pool = connection_pool(url, timeout_s) if url else None
        self.client = aioredis.Redis(connection_pool=self.pool) if self.pool is not None else None
        self._down_since: float | None = None  # the breaker: None = closed
        self._next_try = 0.0  # while open: when the next request may try Redis
        self._resets: set[asyncio.Task] = set()
        self.last_error: str | None = None

    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    @property
    def available(self) -> bool:
        """Worth trying now: configured, and the breaker closed, or open and this caller is the
        one request per `retry_s` that probes Redis (asking claims that probe)."""
        if self.client is None:
            return False
        if self._down_since is None:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_s
        return True

    def failed(self, exc: BaseException) -> None:
        """A Redis call failed (after redis-py's reconnect retry). Opens the breaker unless it is
        open already: later failures (other in-flight calls, a failed probe) do not extend it."""
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if self._down_since is not None:
            return
        now = time.monotonic()
        self._down_since, self._next_try = now, now + self.retry_s
        log.warning("Redis %s unavailable (%s); serving without it, retrying every %.0fs",
                    describe_redis_url(self.url), self.last_error, self.retry_s)
        self._reset_pool()

    def succeeded(self) -> None:
        """A Redis call succeeded: close the breaker."""
        if self._down_since is not None:
            log.warning("Redis %s reachable again after %.1fs", describe_redis_url(self.url),
                        time.monotonic() - self._down_since)
            self._down_since = None
        self.last_error = None

    def _reset_pool(self) -> None:
        """Drop every idle pooled connection at once: after a restart they are all stale, and
        each would otherwise fail (or need a reconnect) on its own. Connections in use are
        dropped by redis-py when their command fails."""
        if self.pool is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._disconnect_idle())
        self._resets.add(task)
        task.add_done_callback(self._resets.discard)

    async def _disconnect_idle(self) -> None:
        # A connection taken from the pool meanwhile may be closed under its command: redis-py
        # then retries that command on a fresh connection (RECONNECT_RETRIES).
        with contextlib.suppress(*REDIS_ERRORS):
            await self.pool.disconnect(inuse_connections=False)

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
        return {"state": "ok", "url": describe_redis_url(self.url)}

    async def close(self) -> None:
        if self.client is not None:
            for task in list(self._resets):
                with contextlib.suppress(*REDIS_ERRORS, asyncio.CancelledError):
                    await task
            with contextlib.suppress(*REDIS_ERRORS):
                await self.client.aclose()
            with contextlib.suppress(*REDIS_ERRORS):
                await self.pool.aclose()
