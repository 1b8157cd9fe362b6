"""Per-key rate limits with the `limits` library: in Redis (shared by every API process) when
it is reachable, else in this process's memory (so limits still hold, per process, while
Redis is down). Fixed windows starting at a key's first request: cheap (one INCR script per
request); a client can burst up to twice the limit across a window boundary.

A key's limit is counted in Redis by a Lua script of this project (`HIT`; the same counting the
`limits` library does: INCR, EXPIRE on the first hit). The data endpoints do not call it on its
own: `cache.LOOKUP` counts the hit and reads the cached response in the same script, so a cached
answer costs one Redis round trip (issue 23). Unknown keys (per client address) and the memory
fallback use `limits`.
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


# KEYS[1]: the window's counter; ARGV[1]: window seconds, ARGV[2]: allowed hits.
# Returns {hits, seconds left in the window (-1 while allowed)}.
HIT = """
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if hits > tonumber(ARGV[2]) then return {hits, redis.call('TTL', KEYS[1])} end
return {hits, -1}
"""


@dataclass(frozen=True)
class Window:
    """Where a key's fixed window is counted in Redis, and its size."""

    redis_key: str
    amount: int
    seconds: int
    limit: str


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
        self.prefix = prefix
        self._windows: dict[tuple[str, str], Window] = {}
        self._hit_script = link.client.register_script(HIT) if link.client is not None else None
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

    def window(self, tier: str, key_id: str) -> Window:
        """The Redis counter of `key_id`'s current limit (computed once per key and tier)."""
        found = self._windows.get((tier, key_id))
        if found is None:
            item = self.items[tier]
            found = Window(f"{self.prefix}:ratelimit:{item.key_for('key', key_id)}", int(item.amount),
                           int(item.get_expiry()), str(item))
            self._windows[(tier, key_id)] = found
        return found

    @staticmethod
    def decided(window: Window, hits: int, seconds_left: int) -> Decision:
        """A Redis count (from HIT or cache.LOOKUP) as a decision."""
        if hits <= window.amount:
            return Decision(True, window.limit)
        return Decision(False, window.limit, max(1, int(seconds_left)))

    async def hit_key_in_memory(self, tier: str, key_id: str) -> Decision:
        """The fallback while Redis is unusable: this process's own count."""
        item = self.items[tier]
        allowed = await self.memory.hit(item, "key", key_id)
        if allowed:
            return Decision(True, str(item))
        stats = await self.memory.get_window_stats(item, "key", key_id)
        return Decision(False, str(item), max(1, math.ceil(stats.reset_time - time.time())))

    async def hit_key(self, tier: str, key_id: str) -> Decision:
        if self._hit_script is not None and self.link.available:
            window = self.window(tier, key_id)
            try:
                hits, left = await self._hit_script(keys=[window.redis_key], args=[window.seconds, window.amount])
            except REDIS_ERRORS as exc:
                self.link.failed(exc)
            else:
                self.link.succeeded()
                return self.decided(window, int(hits), int(left))
        return await self.hit_key_in_memory(tier, key_id)

    async def hit_auth_failure(self, client: str) -> Decision:
        return await self._hit(self.auth_failures, "auth-failure", client)
