"""API keys in tiers: readonly < trading < admin (a tier may call what lower tiers may).

Keys are configured as sha256 hashes (CRYPTO_API_KEYS / CRYPTO_API_KEYS_FILE, see settings.py).
A presented key is hashed and compared with every configured hash by `hmac.compare_digest`,
without stopping at the first match, so timing reveals neither the hash nor its position.
Order of checks: missing/unknown key -> 401 (unknown keys are also rate-limited per client
address), then the key's rate limit -> 429 with Retry-After, then its tier -> 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from crypto_assets.api.settings import TIERS, ApiKey, hash_key

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


def _too_many(decision) -> HTTPException:
    return HTTPException(
        429, f"rate limit {decision.limit} exceeded; retry in {decision.retry_after_s}s",
        headers={"Retry-After": str(decision.retry_after_s), "X-RateLimit-Limit": decision.limit},
    )


async def authorize(api, presented: str | None, needed: str, client: str) -> Caller:
    """The caller for `presented`, or the HTTPException (401/403/429) to answer with."""
    unauthorized = {"WWW-Authenticate": "ApiKey"}
    if not presented:
        raise HTTPException(401, "missing API key: send it in the X-API-Key header", headers=unauthorized)
    key = api.keyring.identify(presented)
    if key is None:
        decision = await api.limits.hit_auth_failure(client)
        if not decision.allowed:
            api.metrics.rate_limited.labels("auth_failure").inc()
            raise _too_many(decision)
        raise HTTPException(401, "unknown API key", headers=unauthorized)
    decision = await api.limits.hit_key(key.tier, key.key_id)
    if not decision.allowed:
        api.metrics.rate_limited.labels("key").inc()
        raise _too_many(decision)
    if not allows(key.tier, needed):
        raise HTTPException(403, f"this endpoint needs a {needed} key (or higher); this key is {key.tier}")
    return Caller(key.tier, key.key_id)


def require(needed: str):
    """FastAPI dependency: the request carries a key of tier `needed` or higher, within its rate limit."""
    if needed not in TIERS:
        raise ValueError(f"unknown tier {needed!r}")

    async def dependency(request: Request, api_key: str | None = Security(API_KEY_HEADER)) -> Caller:
        client = request.client.host if request.client else "unknown"
        return await authorize(request.app.state.api, api_key, needed, client)

    dependency.__name__ = f"require_{needed}"
    return dependency
