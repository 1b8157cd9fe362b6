"""One-line access to the warehouse for notebooks and the API.

    from crypto_assets import load
    df = load("ml_features", start="2025-10-01", end="2025-10-08", symbols=["BTC", "ETH"])
    table = load("ml_features", as_="arrow")        # a pyarrow.Table; as_="polars": a polars.DataFrame
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from crypto_assets.tables import table
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import Warehouse, default_warehouse_url

if TYPE_CHECKING:
    import polars
    import pyarrow

_warehouses: dict[str, Warehouse] = {}
FORMATS = ("pandas", "arrow", "polars")  # what load(as_=...) returns


def _warehouse(url: str | None) -> Warehouse:
    url = url or default_warehouse_url()
    if url not in _warehouses:
        _warehouses[url] = open_warehouse(url)
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
    as_: str = "pandas",
) -> pd.DataFrame | pyarrow.Table | polars.DataFrame:
    """Rows of `asset` with `start <= time < end` (UTC; naive bounds are UTC), as a pandas DataFrame.

    `symbols` filters on the `symbol` column, or for tables without one (news, sentiment,
    social) on the tickers listed in `symbols_mentioned`; `columns` selects columns (keys are
    always included); `filters` keeps rows whose column is one of the listed values
    (e.g. `{"interval": ["1h"]}`). Rows come in primary-key order, or newest first (by the time column)
    with `newest_first`; `limit` caps their number. Timestamps come back timezone-aware (UTC).
    The warehouse is `CRYPTO_WAREHOUSE_URL`, else the embedded Delta Lake warehouse under `DAGSTER_HOME`.
    A table whose storage is damaged (a commit or data file missing, empty or unreadable) raises
    `WarehouseDamaged` naming it, never an empty or partial frame (docs/storage.md, "Damage and recovery");
    an unreachable warehouse raises `WarehouseUnavailable`.

    `as_="arrow"` returns the same rows as a pyarrow.Table in the table's Arrow types (float64,
    int64, bool, timestamp[us, UTC], date32, string; NULL is null, not NaN), built without pandas:
    the lighter choice for big reads (a year of `ml_features`: docs/storage.md, "Loading a year
    into a notebook"). `as_="polars"` returns a polars.DataFrame made from that table (needs the
    `polars` extra: `pip install 'crypto-assets[polars]'`).
    """
    if as_ not in FORMATS:
        raise ValueError(f"as_ must be one of {FORMATS}, not {as_!r}")
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
    options = dict(columns=wanted, filters=filters, lists_any=lists_any, order_by=order_by,
                   descending=newest_first, limit=limit)
    if as_ == "pandas":
        return warehouse.read(spec, start, end, **options)
    pl = _polars() if as_ == "polars" else None  # before the read: a missing extra fails fast
    data = warehouse.read_arrow(spec, start, end, **options)
    return data if pl is None else pl.from_arrow(data)


def _polars():
    try:
        import polars as pl
    except ImportError:
        raise ImportError("load(..., as_='polars') needs polars: pip install 'crypto-assets[polars]'") from None
    return pl

