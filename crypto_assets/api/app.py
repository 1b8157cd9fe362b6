"""The FastAPI app factory.

Startup never waits for Redis: the link connects lazily and the feed falls back to polling,
so the API comes up (and /ready says "degraded") whether Redis is down, protected by a
password, or password-less. The warehouse is not touched at startup either: /ready reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from crypto_assets.api import logs, paging, queries, routes_data, routes_ops, routes_ws
from crypto_assets.api.fastpath import CachedHitFastPath
from crypto_assets.api.metrics import MetricsMiddleware
from crypto_assets.api.settings import ApiSettings
from crypto_assets.api.state import ApiState, freeze_heap_once
from crypto_assets.warehouse.store import SchemaMismatchError, WarehouseDamaged, WarehouseUnavailable

log = logging.getLogger(__name__)

DESCRIPTION = """Read-only access to the crypto-assets warehouse: prices, OHLCV bars, news,
sentiment, technical indicators and ML features, plus a WebSocket price feed (`/ws/prices`).

Send your key in the `X-API-Key` header. Tiers: **readonly** (market data, news, sentiment,
indicators, health), **trading** (+ ML features and the WebSocket feed), **admin** (+ cache
administration). 401: missing/unknown key; 403: tier too low; 429: rate limit (see
`Retry-After`). Unknown symbols answer 404: `GET /api/v1/symbols` lists the valid ones.
Ranges are paged: follow `next_page_token`. See docs/api.md."""


def _error(status: int):
    async def handler(_request: Request, exc: Exception):
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handler


async def _warehouse_down(_request: Request, exc: Exception):
    log.warning("warehouse error: %s: %s", type(exc).__name__, exc)
    return JSONResponse({"detail": f"the warehouse is unavailable ({type(exc).__name__}); retry later"},
                        status_code=503, headers={"Retry-After": "5"})


async def _table_damaged(_request: Request, exc: WarehouseDamaged):
    """A damaged table is an error naming its dataset, never "no data" (docs/storage.md). What is
    damaged is said with paths relative to the table (no server paths); no Retry-After: it stays
    damaged until an operator repairs it."""
    log.error("warehouse table damaged: %s", exc)
    return JSONResponse({"detail": f"the {exc.table} dataset cannot be served: its warehouse table is damaged "
                                   f"({exc.problem}). Nothing was read from it; the operator's `crypto-assets "
                                   "warehouse check` shows the damage and `crypto-assets warehouse repair` recovers it",
                         "dataset": exc.table}, status_code=503)


class ServerTiming:
    """Adds `Server-Timing: app;dur=<ms>`. Kept for other ASGI apps: the API's own
    `MetricsMiddleware` adds the same header (one middleware less per request)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()

        async def send_with_timing(message):
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        await self.app(scope, receive, send_with_timing)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings.from_env()
    logs.install()  # no ?api_key= in uvicorn's lines, however the server was started
    # The access log is a setting, however the server was started (`crypto-assets api` also tells uvicorn).
    logging.getLogger("uvicorn.access").disabled = not settings.access_log
    if not settings.api_keys:
        log.warning("no API keys configured (CRYPTO_API_KEYS / CRYPTO_API_KEYS_FILE): every data endpoint answers 401")
    state = ApiState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        feed_task = asyncio.create_task(state.feed.run(), name="price-feed")
        if settings.freeze_heap:
            # Start-up leaves ~150k long-lived objects (modules, pandas, pydantic models) that every
            # full collection would walk again (pauses of 120-180 ms): move them out of the GC's sight.
            freeze_heap_once("startup")
        try:
            yield
        finally:
            feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feed_task
            await state.feed.close()
            await state.link.close()

    app = FastAPI(title="crypto-assets data API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.api = state
    app.include_router(routes_ops.router)
    app.include_router(routes_data.router)
    app.include_router(routes_ws.router)
    app.add_exception_handler(queries.NoData, _error(404))
    app.add_exception_handler(queries.DatasetUnavailable, _error(503))
    app.add_exception_handler(queries.BadQuery, _error(422))
    app.add_exception_handler(paging.PageTokenError, _error(422))
    app.add_exception_handler(SchemaMismatchError, _error(503))
    app.add_exception_handler(sa.exc.SQLAlchemyError, _warehouse_down)
    app.add_exception_handler(WarehouseUnavailable, _warehouse_down)
    app.add_exception_handler(WarehouseDamaged, _table_damaged)  # its subclass: this handler wins
    app.add_middleware(CachedHitFastPath, state=state, routes=_fast_routes(app))  # cache hits skip routing
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # also adds Server-Timing (outermost)

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        """Prometheus exposition of this process (see crypto_assets/api/metrics.py)."""
        body, content_type = state.metrics.exposition()
        return Response(body, media_type=content_type)

    return app


def _fast_routes(app: FastAPI) -> dict:
    """The symbol-only endpoints fastpath.py answers cache hits of: {(prefix, suffix): (endpoint,
    dataset, tier, route)}; ml-features only when this build declares its table."""
    wanted = {"/api/v1/prices/current/{symbol}": ("prices_current", "price_observations", "readonly")}
    try:
        queries.declared(queries.ML_FEATURES)
        wanted["/api/v1/ml-features/{symbol}/current"] = ("ml_current", queries.ML_FEATURES, "trading")
    except queries.DatasetUnavailable:
        pass
    found = {}
    for route in app.routes:
        path = getattr(route, "path", None)
        if path in wanted and "GET" in getattr(route, "methods", ()):
            prefix, _, suffix = path.partition("{symbol}")
            found[(prefix, suffix)] = (*wanted[path], route)
    return found


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory crypto_assets.api.app:app_from_env`."""
    return create_app(ApiSettings.from_env())
