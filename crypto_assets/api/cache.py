"""Response cache in Redis, invalidated by per-dataset generation counters.

An entry is stored as `<generation>\\n<body>` under a key derived from the request. A read
fetches the entry and the dataset's current generation in one MGET; the entry counts only
if it was computed under the current generation. A writer bumps the generation after a
partition commits (`crypto_assets.api.pubsub`), so every cached response of that dataset
is dropped at once without scanning keys; the TTL bounds staleness for writers that do not
notify. A response computed while a bump happens is stored under the old generation and
is therefore never served.

A response served without Redis (the link's breaker is open, or the call failed) says
`X-Cache: bypass` and counts as `result="bypass"` in the cache metric; see redis_link.py for
how the link recovers after a Redis restart.
"""

from __future__ import annotations

import hashlib

from crypto_assets.api.pubsub import generation_key
from crypto_assets.api.redis_link import REDIS_ERRORS, RedisLink


class ResponseCache:
    def __init__(self, link: RedisLink, prefix: str):
        self.link = link
        self.prefix = prefix

    def key(self, endpoint: str, params: dict) -> str:
        canonical = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] is not None)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
        return f"{self.prefix}:cache:{endpoint}:{digest}"

    async def get(self, dataset: str, key: str) -> tuple[bytes | None, bytes | None]:
        """(cached body or None, generation to store a fresh body under; None = do not cache)."""
        if not self.link.available:
            return None, None
        try:
            generation, entry = await self.link.client.mget(generation_key(self.prefix, dataset), key)
        except REDIS_ERRORS as exc:
            self.link.failed(exc)
            return None, None
        self.link.succeeded()
        generation = generation or b"0"
        if entry:
            stored_generation, _, body = entry.partition(b"\n")
            if stored_generation == generation:
                return body, generation
        return None, generation

    async def put(self, key: str, generation: bytes | None, body: bytes, ttl_s: float) -> None:
        if generation is None or not self.link.available:
            return
        try:
            await self.link.client.set(key, generation + b"\n" + body, px=max(1, int(ttl_s * 1000)))
        except REDIS_ERRORS as exc:
            self.link.failed(exc)

    async def bump(self, dataset: str) -> int | None:
        """Invalidate every cached response of `dataset` (what the writer's notification does)."""
        if not self.link.available:
            return None
        try:
            generation = int(await self.link.client.incr(generation_key(self.prefix, dataset)))
        except REDIS_ERRORS as exc:
            self.link.failed(exc)
            return None
        self.link.succeeded()
        return generation
