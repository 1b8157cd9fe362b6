"""Reads of many files put every row at its key-order place, for every column kind and NULL, on the
Delta warehouse exactly as on SQLite; `load(as_="arrow" | "polars")` returns the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from crypto_assets import load
from crypto_assets.tables.features import ML_FEATURES
from crypto_assets.warehouse.arrow_read import arrow_fields
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.schema import Column, TableSpec
from crypto_assets_tests.warehouse.warehouse_support import every_kind_spec

DAY = pd.Timestamp("2024-03-01", tz="UTC")
SYMBOLS = ["ETH", "BTC", "SOL", "ADA"]  # written in no particular order

KINDS = every_kind_spec("kinds_in_order", "symbol", Column("tickers", "str", "'|'-separated tickers"))


def rows(spec: TableSpec, start: pd.Timestamp, hours: int, seed: int) -> pd.DataFrame:
    """Every symbol x hour in random order; each nullable column ~20% NULL, strings repeating."""
    rng = np.random.default_rng(seed)
    keys = pd.MultiIndex.from_product([SYMBOLS, pd.date_range(start, periods=hours, freq="h")],
                                      names=["symbol", spec.time_column]).to_frame(index=False)
    keys = keys.iloc[rng.permutation(len(keys))].reset_index(drop=True)
    n, data = len(keys), {}
    for col in spec.columns:
        null = (rng.random(n) < 0.2) if col.nullable and col.name not in spec.primary_key else np.zeros(n, bool)
        if col.name in keys:
            values = keys[col.name]
        elif col.kind == "float":
            values = pd.Series(rng.normal(size=n)).mask(null)
        elif col.kind == "int":
            values = pd.Series(pd.array(rng.integers(-5, 50, n), dtype="Int64")).mask(null)
        elif col.kind == "bool":
            values = pd.Series(pd.array(rng.random(n) < 0.5, dtype="boolean")).mask(null)
        elif col.kind == "datetime":
            values = (keys[spec.time_column] + pd.to_timedelta(rng.integers(0, 10**9, n), unit="us")).mask(null)
        elif col.kind == "date":
            values = pd.Series([d.date() for d in keys[spec.time_column]], dtype=object).mask(null, None)
        else:
            pool = ["BTC|ETH", "SOL", "WBTC|ADA"] if col.name == "tickers" else ["up", "down", "flat"]
            values = pd.Series(rng.choice(pool, n), dtype=object).mask(null, None)
        data[col.name] = values
    return pd.DataFrame(data)


def write_days(url: str, spec: TableSpec, days: int = 3) -> pd.DataFrame:
    """`days` days, the last one in two writes (two files in one day's partition)."""
    wh = open_warehouse(url)
    written = []
    for d in range(days):
        start = DAY + pd.Timedelta(days=d)
        for lo, hi in ([(0, 11), (11, 24)] if d == days - 1 else [(0, 24)]):
            frame = rows(spec, start + pd.Timedelta(hours=lo), hi - lo, seed=100 * d + lo)
            wh.replace_window(spec, frame, start + pd.Timedelta(hours=lo), start + pd.Timedelta(hours=hi))
            written.append(frame)
    wh.dispose()
    return pd.concat(written, ignore_index=True)


@pytest.fixture(params=["one scan", "streamed"])
def both(request, delta_url, sqlite_url):
    """The same rows in a Delta and a SQLite warehouse, and the rows as written. The Delta
    warehouse reads the non-key columns in its first scan, or streams them in a second one (as it
    does for wide reads)."""
    written = write_days(delta_url, KINDS)
    assert write_days(sqlite_url, KINDS).equals(written)
    delta = open_warehouse(delta_url)
    delta.one_scan_columns = 0 if request.param == "streamed" else len(KINDS.columns)
    return delta, open_warehouse(sqlite_url), written


def sql_dates_as_delta(frame: pd.DataFrame) -> pd.DataFrame:
    """The SQL warehouses give a NULL date as NaT, Delta as None (both object columns)."""
    if "day" in frame:
        frame["day"] = frame["day"].astype(object).where(frame["day"].notna(), None)
    return frame


@pytest.mark.parametrize("options", [
    {},
    {"start": DAY + pd.Timedelta(hours=20), "end": DAY + pd.Timedelta(days=2, hours=5)},
    {"columns": ["symbol", "at", "x", "label", "day"]},
    {"filters": {"symbol": ["SOL", "BTC"]}, "lists_any": {"tickers": ["ETH", "ADA"]}},
    {"order_by": ["at", "symbol"], "descending": True, "limit": 7},
    {"lists_any": {"tickers": ["SOL"]}, "limit": 5},
])
def test_delta_reads_every_kind_in_key_order_like_sqlite(both, options):
    delta, sqlite, written = both
    got = delta.read(KINDS, **options)
    pd.testing.assert_frame_equal(got, sql_dates_as_delta(sqlite.read(KINDS, **options)))
    assert len(got) > 0
    if not options:  # every row, in (symbol, at) order, each with the values it was written with
        expected = written.sort_values(["symbol", "at"], ignore_index=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        assert got["x"].isna().sum() == written["x"].isna().sum() > 0


def test_read_arrow_is_the_same_rows_with_nulls_as_nulls(both):
    delta, sqlite, written = both
    options = {"filters": {"symbol": ["ADA", "ETH"]}, "order_by": ["at", "symbol"], "descending": True}
    table = delta.read_arrow(KINDS, **options)
    assert table.schema == pa.schema(arrow_fields(KINDS))
    frame = sqlite.read(KINDS, **options)
    assert table.num_rows == len(frame) > 0
    for name in KINDS.column_names:
        assert table.column(name).to_pylist() == [None if pd.isna(v) else v for v in frame[name].tolist()], name
    assert table.column("x").null_count == frame["x"].isna().sum() > 0
    assert not pc.any(pc.is_nan(table.column("x"))).as_py()  # NULL, not NaN
    empty = delta.read_arrow(KINDS, DAY - pd.Timedelta(days=9), DAY - pd.Timedelta(days=8), columns=["x"])
    assert empty.num_rows == 0 and empty.schema == pa.schema(arrow_fields(KINDS, ["x"]))


@pytest.fixture
def features(delta_url, sqlite_url):
    """Two days of `ml_features` rows (every declared column) in a Delta and a SQLite warehouse."""
    for url in (delta_url, sqlite_url):
        write_days(url, ML_FEATURES, days=2)
    return delta_url, sqlite_url


def test_load_as_arrow_and_polars(features):
    import polars as pl

    delta_url, sqlite_url = features
    options = {"symbols": ["btc", "sol"], "columns": ["close", "rsi_14", "regime", "n_observations"],
               "newest_first": True, "limit": 30}
    table = load("ml_features", warehouse_url=delta_url, as_="arrow", **options)
    assert isinstance(table, pa.Table)
    assert table.column_names == ["symbol", "bar_start", "close", "rsi_14", "regime", "n_observations"]
    assert table.num_rows == 30 and set(table.column("symbol").to_pylist()) == {"BTC", "SOL"}
    assert table.column("bar_start").to_pylist() == sorted(table.column("bar_start").to_pylist(), reverse=True)
    # The SQL warehouses give the same table (converted from their frame).
    assert table.equals(load("ml_features", warehouse_url=sqlite_url, as_="arrow", **options))
    whole = load("ml_features", warehouse_url=delta_url, as_="arrow")
    frame = load("ml_features", warehouse_url=delta_url)
    assert whole.schema == pa.schema(arrow_fields(ML_FEATURES)) and whole.num_rows == len(frame) == 2 * 24 * 4
    assert whole.equals(pa.Table.from_pandas(frame, schema=whole.schema, preserve_index=False))

    polars = load("ml_features", warehouse_url=delta_url, as_="polars", **options)
    assert isinstance(polars, pl.DataFrame) and polars.columns == table.column_names
    assert polars.schema["bar_start"] == pl.Datetime("us", "UTC") and polars.schema["n_observations"] == pl.Int64
    for name in table.column_names:
        assert polars[name].to_list() == table.column(name).to_pylist(), name

    with pytest.raises(ValueError, match="as_ must be one of"):
        load("ml_features", warehouse_url=delta_url, as_="csv")
