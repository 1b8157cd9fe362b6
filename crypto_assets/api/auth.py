"""API keys in tiers: readonly < trading < admin (a tier may call what lower tiers may).

Keys are configured as sha256 hashes (CRYPTO_API_KEYS / CRYPTO_API_KEYS_FILE, see settings.py).
A presented key is hashed and compared with every configured hash by `hmac.compare_digest`,
without stopping at the first match, so timing reveals neither the hash nor its position.
Order of checks: missing/unknown key -> 401 (unknown keys are also rate-limited per client
address), then the key's rate limit -> 429 with Retry-After, then its tier -> 403.

The data endpoints (`require(tier, deferred=True)` with `LimitedRoute`) count a key of a
sufficient tier in the same Redis round trip as their cache lookup (state.py `respond`): the
dependency leaves the hit pending, `respond` counts it before anything is read or computed,
and `LimitedRoute` counts it after the handler for any answer that did not reach `respond`
(a 404, a 422): over the limit that answer becomes the 429. Every request of a key is
therefore counted exactly once and an over-limit key never gets data, as before.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from crypto_assets.api.settings import TIERS, ApiKey, hash_key

PENDING_LIMIT = "crypto_api.pending_limit"  # request.scope key of a deferred hit: (tier, key_id) or None
# request.scope key: (cache key, Lookup) of a miss that fastpath.py looked up, the key's hit counted.
FAST_LOOKUP = "crypto_api.fast_lookup"

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="API key. Tiers: readonly < trading < admin. Create one with `crypto-assets api --new-key TIER`.",
)


@dataclass(frozen=True)
class Caller:
    tier: str
    key_id: str


class KeyRing:
    def __init__(self, keys: tuple[ApiKey, ...]):
        self.keys = tuple(keys)

    def identify(self, presented: str | None) -> ApiKey | None:
        if not presented:
            return None
        digest = hash_key(presented)
        found = None
        for key in self.keys:  # no early exit: constant work whichever entry matches
            if hmac.compare_digest(digest, key.sha256) and found is None:
                found = key
        return found


def allows(tier: str, needed: str) -> bool:
    return TIERS.index(tier) >= TIERS.index(needed)


def too_many(decision) -> HTTPException:
    return HTTPException(
        429, f"rate limit {decision.limit} exceeded; retry in {decision.retry_after_s}s",
        headers={"Retry-After": str(decision.retry_after_s), "X-RateLimit-Limit": decision.limit},
    )


async def authorize(api, presented: str | None, needed: str, client: str, *, deferred: bool = False) -> Caller:
    """The caller for `presented`, or the HTTPException (401/403/429) to answer with. `deferred`:
    a key whose tier suffices is not counted here (the caller counts it: see the module's doc)."""
    unauthorized = {"WWW-Authenticate": "ApiKey"}
    if not presented:
        raise HTTPException(401, "missing API key: send it in the X-API-Key header", headers=unauthorized)
    key = api.keyring.identify(presented)
    if key is None:
        decision = await api.limits.hit_auth_failure(client)
        if not decision.allowed:
            api.metrics.rate_limited.labels("auth_failure").inc()
            raise too_many(decision)
        raise HTTPException(401, "unknown API key", headers=unauthorized)
    if deferred and allows(key.tier, needed):
        return Caller(key.tier, key.key_id)
    decision = await api.limits.hit_key(key.tier, key.key_id)
    if not decision.allowed:
        api.metrics.rate_limited.labels("key").inc()
        raise too_many(decision)
    if not allows(key.tier, needed):
        raise HTTPException(403, f"this endpoint needs a {needed} key (or higher); this key is {key.tier}")
    return Caller(key.tier, key.key_id)


def require(needed: str, *, deferred: bool = False):
    """FastAPI dependency: the request carries a key of tier `needed` or higher, within its rate limit.
    `deferred` (routes of a `LimitedRoute` router only): the limit is counted by `respond` or by the
    route after the handler, in the same Redis round trip as the cache lookup."""
    if needed not in TIERS:
        raise ValueError(f"unknown tier {needed!r}")

    async def dependency(request: Request, api_key: str | None = Security(API_KEY_HEADER)) -> Caller:
        client = request.client.host if request.client else "unknown"
        caller = await authorize(request.app.state.api, api_key, needed, client, deferred=deferred)
        if deferred and FAST_LOOKUP not in request.scope:  # else fastpath.py counted it already
            request.scope[PENDING_LIMIT] = (caller.tier, caller.key_id)
        return caller

    dependency.__name__ = f"require_{needed}"
    return dependency


class LimitedRoute(APIRoute):
    """Counts a deferred rate-limit hit that the handler did not count (it answered without
    reaching `respond`: a 404, a 422, any error), and answers 429 instead when it is over."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def counted(request: Request):
            try:
                response = await handler(request)
            except Exception:
                refused = await _settle(request)
                if refused is not None:
                    return refused
                raise
            return await _settle(request) or response

        return counted


async def _settle(request: Request) -> JSONResponse | None:
    pending = request.scope.get(PENDING_LIMIT)
    if pending is None:
        return None
    request.scope[PENDING_LIMIT] = None
    api = request.app.state.api
    decision = await api.limits.hit_key(*pending)
    if decision.allowed:
        return None
    api.metrics.rate_limited.labels("key").inc()
    exc = too_many(decision)
    return JSONResponse({"detail": exc.detail}, status_code=429, headers=exc.headers)
