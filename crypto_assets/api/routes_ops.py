"""Operational endpoints: liveness, readiness, dataset health, the symbol list, cache admin."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from crypto_assets.api import health, models, queries, render
from crypto_assets.api.auth import authorize, require
from crypto_assets.warehouse.store import WarehouseDamaged, redact_url

router = APIRouter()


@router.get("/health", summary="Liveness: the process answers (no dependency is checked)")
async def liveness():
    return {"status": "alive"}


def _freshness(url) -> list[dict]:
    return health.compute_dataset_health(health.latest_partitions(url), pd.Timestamp.now(tz="UTC"))


def _readiness_facts(url) -> tuple[list[dict], dict[str, str]]:
    """Freshness rows, and {table: what is damaged} over every declared table: the datasets whose
    read met damage, plus the integrity check of each table (its log, the referenced files' sizes
    and Parquet footers, each footer read once per process while its file stays the same)."""
    from crypto_assets.loading import _warehouse
    from crypto_assets.tables import all_tables

    rows = _freshness(url)
    damaged = {r["dataset"]: r["detail"].removeprefix("its table is damaged: ") for r in rows
               if r["state"] == health.DAMAGED}
    warehouse = _warehouse(url)
    for name, spec in all_tables().items():
        if name in damaged:
            continue
        try:
            problems = warehouse.damage(spec, footers=True)
        except WarehouseDamaged as exc:
            problems = [exc.problem]
        if problems:
            damaged[name] = "; ".join(problems)
    return rows, damaged


def _health_rows(rows: list[dict]) -> list[dict]:
    return [{**r, "latest_time": render.iso(r["latest_time"]) if r["latest_time"] is not None else None}
            for r in rows]


async def _has_key(request: Request) -> bool:
    """Whether the request carries a valid key (any tier). A wrong key is not an error here:
    the caller just gets the public answer; only a rate-limited one is refused (429)."""
    presented = request.headers.get("x-api-key")
    if not presented:
        return False
    client = request.client.host if request.client else "unknown"
    try:
        await authorize(request.app.state.api, presented, "readonly", client)
    except HTTPException as exc:
        if exc.status_code == 429:
            raise
        return False
    return True


def _warehouse_problem(exc: Exception, url: str | None) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    if url:
        try:
            shown = redact_url(url)
        except Exception:  # an unparseable URL: show none of it
            shown = "<the configured URL>"
        text = text.replace(url, shown)
    return f"{type(exc).__name__}: {text}"


def _status_words(body: dict) -> dict:
    """What anyone may see: states, no hosts, users, database names or error texts."""
    return {"status": body["status"], "warehouse": {"state": body["warehouse"]["state"]},
            "redis": {"state": body["redis"]["state"]}, "feed": {"mode": body["feed"]["mode"]}}


@router.get("/ready", response_model=models.Ready,
            summary="Readiness: warehouse reachable (503 if not), Redis state; with a key, details",
            description="Without a valid X-API-Key only state words are shown. With any valid key: the "
                        "(password-less) warehouse and Redis URLs, error details, freshness per dataset, "
                        "and what is damaged in which table. A damaged table makes the warehouse state "
                        "`damaged` and the status `degraded` (its endpoints answer 503; the others serve).",
            responses={503: {"description": "The warehouse cannot be read."}})
async def readiness(request: Request):
    api = request.app.state.api
    detailed = await _has_key(request)
    redis_state = await api.link.check()
    feed = {"mode": api.feed.mode, "subscribers": len(api.feed.subscribers)}
    url = api.warehouse_url
    try:
        rows, damaged = await run_in_threadpool(_readiness_facts, url)
    except Exception as exc:  # any failure to read the warehouse means "not ready"
        warehouse = {"state": "unavailable", "detail": _warehouse_problem(exc, url)}
        body = {"status": "unavailable", "warehouse": warehouse, "redis": redis_state, "feed": feed}
        return JSONResponse(body if detailed else _status_words(body), status_code=503)
    warehouse = {"state": "damaged" if damaged else "ok",
                 "url": redact_url(url) if url else "default (CRYPTO_WAREHOUSE_URL unset)",
                 "datasets": {r["dataset"]: {"latest_partition": r["latest_partition"], "age_seconds": r["age_seconds"],
                                             "state": r["state"]} for r in rows}}
    if damaged:
        warehouse["damaged"] = damaged
    status = "ready" if redis_state["state"] == "ok" and not damaged else "degraded"
    body = {"status": status, "warehouse": warehouse, "redis": redis_state, "feed": feed}
    return body if detailed else _status_words(body)


def _health_payload(url) -> dict:
    rows = _health_rows(_freshness(url))
    return {"generated_at": render.iso(pd.Timestamp.now(tz="UTC")), "overall": health.overall_state(rows),
            "datasets": rows}


@router.get("/api/v1/health", response_model=models.Health, dependencies=[Depends(require("readonly"))],
            summary="Per-dataset health: latest partition, age, state")
async def dataset_health(request: Request):
    api = request.app.state.api
    # Cached under the price generation: it moves whenever the most frequent dataset lands.
    return await api.respond(request, "health", "price_observations", {}, _health_payload, api.warehouse_url)


@router.get("/api/v1/symbols", response_model=models.Symbols, dependencies=[Depends(require("readonly"))],
            summary="The symbols this API serves (coin_universe)")
async def symbols(request: Request):
    api = request.app.state.api
    return await api.respond(request, "symbols", "coin_universe", {}, queries.symbols_payload, api.warehouse_url)


@router.post("/api/v1/admin/cache/invalidate", response_model=models.Invalidated,
             dependencies=[Depends(require("admin"))],
             summary="Drop cached responses of datasets (all by default), as a new partition would")
async def invalidate_cache(request: Request,
                           dataset: Annotated[list[str] | None, Query(description="Dataset names; default all.")] = None):
    api = request.app.state.api
    names = sorted(set(dataset)) if dataset else sorted(health.DATASETS)
    unknown = [n for n in names if n not in health.DATASETS]
    if unknown:
        return JSONResponse({"detail": f"unknown datasets {unknown}; known: {sorted(health.DATASETS)}"},
                            status_code=422)
    generations = {name: await api.cache.bump(name) for name in names}
    return {"invalidated": names, "generations": generations}
