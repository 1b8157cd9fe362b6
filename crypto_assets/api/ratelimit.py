"""Per-key rate limits with the `limits` library: in Redis (shared by every API process) when
it is reachable, else in this process's memory (so limits still hold, per process, while
Redis is down). Fixed windows starting at a key's first request: cheap (one INCR script per
request); a client can burst up to twice the limit across a window boundary.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from crypto_assets.api.redis_link import REDIS_ERRORS, RedisLink


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: str
    retry_after_s: int = 0


class RateLimits:
    def __init__(self, link: RedisLink, prefix: str, per_tier: dict[str, str], auth_failures: str,
                 timeout_s: float = 0.5):
        del timeout_s  # the link's pool carries the timeouts (kept for callers that pass it)
        self.link = link
        self.items = {tier: parse(rate) for tier, rate in per_tier.items()}
        self.auth_failures = parse(auth_failures)
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.redis = None
        if link.pool is not None:
            # The link's pool (its reconnect retry, health checks, and the reset when the breaker
            # opens), not a pool of its own that would keep stale connections after a restart.
            storage = RedisStorage(
                "async+" + link.url, implementation="redispy", wrap_exceptions=True,
                key_prefix=f"{prefix}:ratelimit", connection_pool=link.pool,
            )
            self.redis = FixedWindowRateLimiter(storage)

    async def _hit(self, item, *identifiers: str) -> Decision:
        limiter = self.redis if self.redis is not None and self.link.available else self.memory
        try:
            allowed = await limiter.hit(item, *identifiers)
            stats = None if allowed else await limiter.get_window_stats(item, *identifiers)
            if limiter is self.redis:
                self.link.succeeded()
        except (StorageError, *REDIS_ERRORS) as exc:
            self.link.failed(exc)
            limiter = self.memory
            allowed = await limiter.hit(item, *identifiers)
            stats = None if allowed else await limiter.get_window_stats(item, *identifiers)
        retry = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, str(item), retry)

    async def hit_key(self, tier: str, key_id: str) -> Decision:
        return await self._hit(self.items[tier], "key", key_id)

    async def hit_auth_failure(self, client: str) -> Decision:
        return await self._hit(self.auth_failures, "auth-failure", client)
