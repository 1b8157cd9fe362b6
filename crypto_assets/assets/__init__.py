"""Assets by group: reference, ingest, enrich, features. Each module exports `ASSETS`
(and optionally `SCHEDULES`)."""

from __future__ import annotations

import importlib

_MODULES = (
    "crypto_assets.assets.reference",
    "crypto_assets.assets.ingest.prices",
    "crypto_assets.assets.ingest.exchange_bars",
    "crypto_assets.assets.ingest.derivatives",
    "crypto_assets.assets.ingest.news",
    "crypto_assets.assets.ingest.social",
    "crypto_assets.assets.ingest.macro",
    "crypto_assets.assets.ingest.onchain",
    "crypto_assets.assets.ingest.fear_greed",
    "crypto_assets.assets.enrich.sentiment",
    "crypto_assets.assets.enrich.narratives",
    "crypto_assets.assets.enrich.indicators",
    "crypto_assets.assets.enrich.intelligence",
    "crypto_assets.assets.features.ml_features",
)


def _modules():
    return [importlib.import_module(name) for name in _MODULES]


def all_assets() -> list:
    return [asset for module in _modules() for asset in module.ASSETS]


def all_schedules() -> list:
    return [schedule for module in _modules() for schedule in getattr(module, "SCHEDULES", [])]
