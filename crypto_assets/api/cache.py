"""Response cache in Redis, invalidated by per-dataset generation counters.

An entry is stored under a key derived from the request (the parameters themselves, hashed
when long) with the generation it was computed under. A read fetches the entry and the
dataset's current generation in one script; the entry counts only if it was computed under the
current generation. A writer bumps the generation after a
partition commits (`crypto_assets.api.pubsub`), so every cached response of that dataset
is dropped at once without scanning keys; the TTL bounds staleness for writers that do not
notify. A response computed while a bump happens is stored under the old generation and
is therefore never served.

A response served without Redis (the link's breaker is open, or the call failed) says
`X-Cache: bypass` and counts as `result="bypass"` in the cache metric; see redis_link.py for
how the link recovers after a Redis restart.

One round trip per cached answer (issue 23): `LOOKUP`, one Lua script, counts the caller's
rate-limit hit (ratelimit.py), reads the generation and the entry, and, when the entry is missing
or past its TTL, takes the key's short recomputation lock (SET NX PX), all at once.

Entries are `<generation>\\n<fresh until, ms since the epoch>\\n<body>`, kept in Redis for the
TTL plus `cache_stale_s`. Past its TTL an entry is *stale*: the one request that took the lock
recomputes it while the others are served the stale body (`X-Cache: stale`); an entry of an older
generation is never served. With no entry at all, the other requests wait for the lock holder's
result (state.py also joins requests of one process on one computation), so an expiry or a new
generation costs one warehouse read, not one per client.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import secrets
import time
from dataclasses import dataclass

from redis.exceptions import NoScriptError

from crypto_assets.api.pubsub import generation_key
from crypto_assets.api.redis_link import REDIS_ERRORS, RedisLink
from crypto_assets.api.ratelimit import Window

# KEYS: [1] rate-limit counter (unused when ARGV[1] is ''), [2] generation, [3] entry, [4] lock.
# ARGV: [1] window seconds or '' (no rate limit), [2] allowed hits, [3] now (ms), [4] lock ms, [5] lock token.
# Returns {hits, seconds left (-1: allowed)} when over the limit, else
# {hits, -1, generation, state (0 none, 1 fresh, 2 stale), locked (1: this caller recomputes), entry}.
LOOKUP = r"""
local hits = 0
if ARGV[1] ~= '' then
  hits = redis.call('INCR', KEYS[1])
  if hits == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
  if hits > tonumber(ARGV[2]) then return {hits, redis.call('TTL', KEYS[1])} end
end
local gen = redis.call('GET', KEYS[2]) or '0'
local entry = redis.call('GET', KEYS[3])
local state = 0
if entry then
  local a = string.find(entry, '\n', 1, true)
  if a and string.sub(entry, 1, a - 1) == gen then
    local b = string.find(entry, '\n', a + 1, true)
    if b and tonumber(string.sub(entry, a + 1, b - 1)) >= tonumber(ARGV[3]) then state = 1 else state = 2 end
  end
end
if state == 0 then entry = false end
local locked = 0
if state ~= 1 and redis.call('SET', KEYS[4], ARGV[5], 'NX', 'PX', ARGV[4]) then locked = 1 end
return {hits, -1, gen, state, locked, entry}
"""

# KEYS: [1] entry, [2] lock. ARGV: [1] entry ('' = store nothing), [2] its ms in Redis, [3] lock token.
STORE = """
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""

MAX_PLAIN_KEY = 200  # longer parameter strings are hashed into the key
WAIT_POLL_S = 0.01  # how often a request waiting for another worker's recomputation looks again


@dataclass
class Lookup:
    """What LOOKUP found. `over_limit`: the rate limit refused the caller (`retry_after_s`)."""

    state: str  # hit | stale | miss | bypass | over_limit
    body: bytes | None = None
    generation: bytes | None = None
    locked: bool = False  # this caller holds the recomputation lock
    token: str | None = None
    hits: int = 0
    retry_after_s: int = 0


class ResponseCache:
    def __init__(self, link: RedisLink, prefix: str):
        self.link = link
        self.prefix = prefix
        self._lookup = link.client.register_script(LOOKUP) if link.client is not None else None
        self._lookup_sha = hashlib.sha1(LOOKUP.encode()).hexdigest()
        # Lock tokens: unique per process and call, without a system call per lookup.
        self._tokens = (f"{os.getpid()}-{secrets.token_hex(4)}-{n}" for n in itertools.count())
        self._store = link.client.register_script(STORE) if link.client is not None else None
        self._generation_keys: dict[str, str] = {}

    def key(self, endpoint: str, params: dict) -> str:
        canonical = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] is not None)
        if len(canonical) > MAX_PLAIN_KEY or "\n" in canonical:
            canonical = "sha256=" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
        return f"{self.prefix}:cache:{endpoint}:{canonical}"

    def generation_key(self, dataset: str) -> str:
        found = self._generation_keys.get(dataset)
        if found is None:
            found = self._generation_keys[dataset] = generation_key(self.prefix, dataset)
        return found

    async def lookup(self, dataset: str, key: str, window: Window | None, lock_s: float) -> Lookup | None:
        """One round trip: the rate-limit hit of `window` (None: not counted here), the entry and,
        when it is missing or stale, the recomputation lock. None: Redis is not usable (bypass;
        the caller counts the hit in memory)."""
        if self._lookup is None or not self.link.available:
            return None
        token = next(self._tokens)
        argv = (window.redis_key if window is not None else key, self.generation_key(dataset), key, key + ":lock",
                *((window.seconds, window.amount) if window is not None else ("", 0)),
                int(time.time() * 1000), max(1, int(lock_s * 1000)), token)
        try:
            try:  # EVALSHA straight away (redis-py's Script object costs more per call)
                reply = await self.link.client.evalsha(self._lookup_sha, 4, *argv)
            except NoScriptError:  # a restarted Redis forgot the script: load it once more
                await self.link.client.script_load(LOOKUP)
                reply = await self.link.client.evalsha(self._lookup_sha, 4, *argv)
        except REDIS_ERRORS as exc:
            self.link.failed(exc)
            return None
        self.link.succeeded()
        hits = int(reply[0])
        if len(reply) == 2:  # the rate limit refused: nothing else was read
            return Lookup("over_limit", hits=hits, retry_after_s=max(1, int(reply[1])))
        generation, state, locked = reply[2], int(reply[3]), bool(int(reply[4]))
        body = reply[5].split(b"\n", 2)[2] if state and len(reply) > 5 and reply[5] else None
        name = {1: "hit", 2: "stale"}.get(state, "miss") if body is not None else "miss"
        return Lookup(name, body, generation, locked, token if locked else None, hits)

    async def store(self, key: str, found: Lookup, body: bytes | None, ttl_s: float, stale_s: float) -> None:
        """Store `body` under the generation it was computed for (None: nothing) and release the lock."""
        if self._store is None or (found.token is None and body is None):
            return
        entry = b""
        if body is not None and found.generation is not None:
            fresh_until = int((time.time() + ttl_s) * 1000)
            entry = found.generation + b"\n" + str(fresh_until).encode() + b"\n" + body
        try:
            await self._store(keys=[key, key + ":lock"],
                              args=[entry, max(1, int((ttl_s + stale_s) * 1000)), found.token or ""])
        except REDIS_ERRORS as exc:
            self.link.failed(exc)

    async def wait_for_other(self, dataset: str, key: str, lock_s: float) -> Lookup | None:
        """Another worker holds the key's lock: poll until its result is stored (a hit), the lock
        is free again (this caller takes it: a miss with `locked`), or `lock_s` passed (None)."""
        deadline = time.monotonic() + lock_s
        while time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_S)
            found = await self.lookup(dataset, key, None, lock_s)
            if found is None or found.state in ("hit", "stale") or found.locked:
                return found
        return None

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
