"""Cache hits of the symbol-only endpoints without FastAPI's routing and dependency machinery (issue 23).

`GET /api/v1/prices/current/{symbol}` and `GET /api/v1/ml-features/{symbol}/current` (no query
string) are the most polled endpoints. For them this ASGI middleware does, before routing, only what
a cached answer needs: the key (hash compared like auth.py), its tier, the symbol (against the
universe the app already holds), then `cache.LOOKUP`, which counts the key's rate-limit hit and reads
the entry in one Redis round trip. A fresh entry (or a stale one while another request recomputes
it) is sent at once; over the limit the 429 is sent at once (the same body and headers as auth.py's).

Everything else goes on to FastAPI unchanged: no or an unknown key (401, counted per client), a tier
too low (403 after the limit), an unknown or malformed symbol (404/422), a query string, Redis not
usable. A miss also goes on, carrying what the lookup found (`FAST_LOOKUP`): the key's hit is then
already counted and the recomputation lock possibly held, so neither is done twice.
"""

from __future__ import annotations

import re
import time

from crypto_assets.api.auth import FAST_LOOKUP, allows, too_many
from crypto_assets.api.cache import Lookup
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$")  # routes_data.SYMBOL_PATTERN


class CachedHitFastPath:
    def __init__(self, app, state, routes: dict):
        """`routes`: {(prefix, suffix): (endpoint, dataset, tier, route)} for paths `prefix + symbol + suffix`."""
        self.app = app
        self.state = state
        self.routes = routes

    def _match(self, path: str):
        for (prefix, suffix), target in self.routes.items():
            if path.startswith(prefix) and path.endswith(suffix) and len(path) > len(prefix) + len(suffix):
                symbol = path[len(prefix): len(path) - len(suffix)]
                if "/" not in symbol:
                    return symbol, target
        return None, None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string"):
            return await self.app(scope, receive, send)
        symbol, target = self._match(scope["path"])
        if target is None:
            return await self.app(scope, receive, send)
        endpoint, dataset, needed, route = target
        api = self.state
        presented = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                presented = value.decode("latin-1")
                break
        key = api.keyring.identify(presented)
        known = api._universe
        if (key is None or not allows(key.tier, needed) or not _SYMBOL.match(symbol)
                or time.monotonic() - api._universe_read_at > api.settings.universe_ttl_s
                or symbol.upper() not in known):
            return await self.app(scope, receive, send)  # FastAPI answers (401/403/404/422) or refreshes
        symbol = symbol.upper()
        cache_key = api.cache.key(endpoint, {"symbol": symbol})
        window = api.limits.window(key.tier, key.key_id)
        found: Lookup | None = await api.cache.lookup(dataset, cache_key, window, api.settings.cache_lock_s)
        if found is None:  # Redis not usable: FastAPI's path counts the hit in memory
            return await self.app(scope, receive, send)
        scope["route"] = route  # for the metrics' route label
        if found.state == "over_limit":
            api.metrics.rate_limited.labels("key").inc()
            exc = too_many(api.limits.decided(window, found.hits, found.retry_after_s))
            body = b'{"detail":' + _json_string(exc.detail) + b"}"
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            return await _send(send, 429, headers, body)
        if found.state == "hit" or (found.state == "stale" and not found.locked):
            api._count_cache(endpoint, found.state)
            return await _send(send, 200, [(b"content-type", b"application/json"),
                                           (b"content-length", str(len(found.body)).encode()),
                                           (b"x-cache", found.state.encode())], found.body)
        scope[FAST_LOOKUP] = (cache_key, found)  # a miss: FastAPI computes it; the hit is counted
        return await self.app(scope, receive, send)


def _json_string(text: str) -> bytes:
    import orjson

    return orjson.dumps(text)


async def _send(send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
