"""One-line access to the warehouse for notebooks and the API.

    from crypto_assets import load
    df = load("ml_features", start="2025-10-01", end="2025-10-08", symbols=["BTC", "ETH"])
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from crypto_assets.tables import table
from crypto_assets.warehouse.store import Warehouse, default_warehouse_url

_warehouses: dict[str, Warehouse] = {}


def _warehouse(url: str | None) -> Warehouse:
    url = url or default_warehouse_url()
    if url not in _warehouses:
        _warehouses[url] = Warehouse(url)
    return _warehouses[url]


def load(
    asset: str,
    start=None,
    end=None,
    *,
    symbols: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    warehouse_url: str | None = None,
    filters: dict[str, Sequence] | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> pd.DataFrame:
    """Rows of `asset` with `start <= time < end` (UTC; naive bounds are UTC), as a DataFrame.

    `symbols` filters on the `symbol` column, or for tables without one (news, sentiment,
    social) on the tickers listed in `symbols_mentioned`; `columns` selects columns (keys are
    always included); `filters` keeps rows whose column is one of the listed values
    (e.g. `{"interval": ["1h"]}`). Rows come in primary-key order, or newest first (by the time column)
    with `newest_first`; `limit` caps their number. Timestamps come back timezone-aware (UTC).
    The warehouse is `CRYPTO_WAREHOUSE_URL`, else the embedded Delta Lake warehouse under `DAGSTER_HOME`.
    A table whose storage is damaged (a commit or data file missing, empty or unreadable) raises
    `WarehouseDamaged` naming it, never an empty or partial frame (docs/storage.md, "Damage and recovery");
    an unreachable warehouse raises `WarehouseUnavailable`.
    """
    spec = table(asset)
    warehouse = _warehouse(warehouse_url)
    filters = {col: list(values) for col, values in (filters or {}).items()}
    lists_any = None
    if symbols is not None:
        wanted_symbols = [s.upper() for s in symbols]
        if "symbol" in spec.column_names:
            filters["symbol"] = wanted_symbols
        elif "symbols_mentioned" in spec.column_names:
            lists_any = {"symbols_mentioned": wanted_symbols}
        else:
            raise ValueError(f"{asset} has no symbol column; drop symbols=")
    wanted = None
    if columns is not None:
        keys = [c for c in (*spec.primary_key, spec.time_column) if c]
        wanted = list(dict.fromkeys([*keys, *columns]))
    order_by = None
    if newest_first:
        if spec.time_column is None:
            raise ValueError(f"{asset} has no time column; drop newest_first=")
        order_by = list(dict.fromkeys([spec.time_column, *spec.primary_key]))
    if limit is not None and int(limit) < 1:
        raise ValueError("limit must be a positive number of rows")
    return warehouse.read(spec, start, end, columns=wanted, filters=filters, lists_any=lists_any,
                          order_by=order_by, descending=newest_first, limit=limit)

