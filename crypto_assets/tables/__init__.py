"""Registry of every warehouse table declared in code (one per asset, same name).

Each concern declares its `TableSpec`s in a module of this package; add it to `_MODULES`.
"""

from __future__ import annotations

import importlib

from crypto_assets.warehouse.schema import TableSpec

_MODULES = ("prices", "quality", "sentiment", "indicators", "news", "social", "macro", "onchain", "features",
            "derivatives", "narratives", "intelligence")


def all_tables() -> dict[str, TableSpec]:
    tables: dict[str, TableSpec] = {}
    for name in _MODULES:
        module = importlib.import_module(f"crypto_assets.tables.{name}")
        for spec in module.TABLES:
            if spec.name in tables:
                raise ValueError(f"table {spec.name} declared twice")
            tables[spec.name] = spec
    return tables


def table(name: str) -> TableSpec:
    tables = all_tables()
    if name not in tables:
        raise KeyError(f"no warehouse table {name!r}; declared: {sorted(tables)}")
    return tables[name]


def table_for_asset(asset_key) -> TableSpec:
    """The table of a Dagster `AssetKey` (same name as the asset)."""
    return table(asset_key.path[-1])
