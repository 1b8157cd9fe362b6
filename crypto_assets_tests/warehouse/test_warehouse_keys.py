"""Every table's values fit on both backends (issue 11, item 12).

MySQL refused a 204-character `feed|url` quarantine key in a VARCHAR(191) that SQLite had
accepted silently. Now: `str` columns (keys, short labels) hold at most 191 characters on both
backends, and a longer value is refused before writing, naming the column; unbounded values are
`text` (MEDIUMTEXT on MySQL). For every table declared in crypto_assets/tables/, rows with
maximal-length keys and long 4-byte-character texts are written and read back unchanged.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from crypto_assets.tables import all_tables
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.schema import STR_MAX_CHARS, Column, TableSpec
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import SchemaMismatchError, Warehouse

T0 = pd.Timestamp("2025-10-01 12:00", tz="UTC")
TEXT_CHARS = 70_000  # more than MySQL's 64 KB TEXT
# A realistic long key: the RSS quarantine's `feed|url` of 204 characters that MySQL refused.
FEED_URL_KEY = "cointelegraph|https://cointelegraph.com/news/" + "bitcoin-price-analysis-" * 6 + "x" * 20
assert len(FEED_URL_KEY) > STR_MAX_CHARS


def _string(length: int, row: int) -> str:
    """`length` characters, mixing ASCII, 2-, 3- and 4-byte UTF-8, unique per row at the end."""
    body = ("Ab-é₿🚀" * (length // 6 + 1))[: length - 3]
    return f"{body}{row:03d}"


def maximal_rows(spec: TableSpec, n: int = 2) -> pd.DataFrame:
    data = {}
    for i, col in enumerate(spec.columns):
        if col.kind == "str":
            data[col.name] = [_string(STR_MAX_CHARS, r) for r in range(n)]
        elif col.kind == "text":
            data[col.name] = [_string(TEXT_CHARS, r) for r in range(n)]
        elif col.kind == "float":
            data[col.name] = [i + r + 0.25 for r in range(n)]
        elif col.kind == "int":
            data[col.name] = pd.array([i + r for r in range(n)], dtype="Int64")
        elif col.kind == "bool":
            data[col.name] = pd.array([bool(r % 2) for r in range(n)], dtype="boolean")
        elif col.kind == "datetime":
            data[col.name] = [T0 + pd.Timedelta(minutes=r) for r in range(n)]
        elif col.kind == "date":
            # one day apart: a table keyed by its date alone (fear_greed_index) has one row per day
            data[col.name] = [(T0 + pd.Timedelta(days=r)).date() for r in range(n)]
    return pd.DataFrame(data)


def write(wh: Warehouse, spec: TableSpec, frame: pd.DataFrame) -> None:
    if spec.time_column is None:
        wh.replace_all(spec, frame)
    else:
        wh.replace_window(spec, frame, T0.floor("D"), T0.floor("D") + pd.Timedelta(days=len(frame)))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(all_tables()))
def test_every_table_holds_maximal_keys_and_long_texts(warehouse_url, name):
    spec = all_tables()[name]
    wh = open_warehouse(warehouse_url)
    frame = maximal_rows(spec)
    write(wh, spec, frame)
    write(wh, spec, frame)  # idempotent: the long keys still identify the rows
    back = wh.read(spec)
    assert len(back) == len(frame)
    order = list(spec.primary_key) or [spec.column_names[0]]
    back = back.sort_values(order).reset_index(drop=True)
    for col in spec.columns:
        if col.kind in ("str", "text"):
            assert back[col.name].tolist() == frame[col.name].tolist(), col.name
    wh.dispose()


def test_a_value_longer_than_its_str_column_is_refused_alike_on_every_backend(warehouse_url):
    spec = all_tables()["news_articles"]
    wh = open_warehouse(warehouse_url)
    frame = maximal_rows(spec, 1)
    frame["feed"] = "f" * (STR_MAX_CHARS + 1)
    with pytest.raises(ValueError, match=r"news_articles\.feed: 1 values are longer than the column's 191 "
                                         r"characters \(longest 192"):
        write(wh, spec, frame)
    assert wh.read(spec).empty  # nothing half-written
    wh.dispose()


def test_the_quarantine_keeps_a_long_feed_url_key(warehouse_url):
    from crypto_assets.quality.quarantine import Rejects

    rejects = Rejects("news_articles", "rss")
    rejects.add("unparseable date", {"link": FEED_URL_KEY.split("|", 1)[1]}, key=FEED_URL_KEY, at=T0)
    wh = open_warehouse(warehouse_url)
    assert rejects.write(wh, T0.floor("h"), T0.floor("h") + pd.Timedelta("1h")) == 1
    assert wh.read(QUARANTINE, columns=["record_key"]).record_key.tolist() == [FEED_URL_KEY]
    wh.dispose()


def _old_quarantine() -> TableSpec:
    """The quarantine as releases before this change created it: reason and record_key VARCHAR(191)."""
    cols = tuple(Column(c.name, "str", c.description, c.nullable) if c.name in ("reason", "record_key") else c
                 for c in QUARANTINE.columns)
    return TableSpec(QUARANTINE.name, cols, QUARANTINE.primary_key, QUARANTINE.time_column,
                     QUARANTINE.description, QUARANTINE.indexes)


@pytest.mark.slow
def test_an_existing_mysql_quarantine_is_refused_until_migrate_widens_it(mysql_url):
    old = open_warehouse(mysql_url)
    old.ensure_table(_old_quarantine())
    old.dispose()
    wh = open_warehouse(mysql_url)
    diff = wh.schema_diff(QUARANTINE)
    assert not diff.ok and any(m.startswith("record_key: expected text, found VARCHAR(191) (migrate widens it)")
                               for m in diff.mistyped), diff
    with pytest.raises(SchemaMismatchError, match="record_key.*crypto-assets warehouse migrate"):
        wh.read(QUARANTINE)

    done = subprocess.run([sys.executable, "-m", "crypto_assets.cli", "warehouse", "migrate", "--url", mysql_url],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "quarantine: widened record_key VARCHAR(191) -> MEDIUMTEXT" in done.stdout
    assert "quarantine: widened reason VARCHAR(191) -> MEDIUMTEXT" in done.stdout
    again = subprocess.run([sys.executable, "-m", "crypto_assets.cli", "warehouse", "migrate", "--url", mysql_url],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "widened" not in again.stdout  # idempotent

    wh = open_warehouse(mysql_url)
    test_the_quarantine_keeps_a_long_feed_url_key(mysql_url)
    columns = {c["name"]: c for c in sa.inspect(wh.engine).get_columns("quarantine")}
    assert columns["record_key"]["nullable"]  # nullability kept
    wh.dispose()


def test_an_old_sqlite_quarantine_needs_no_migration(sqlite_url):
    """SQLite stores any length in a VARCHAR: old embedded warehouses keep working as they are."""
    open_warehouse(sqlite_url).ensure_table(_old_quarantine())
    wh = open_warehouse(sqlite_url)
    assert wh.schema_diff(QUARANTINE).ok
    test_the_quarantine_keeps_a_long_feed_url_key(sqlite_url)


def test_key_columns_are_bounded_strings_or_fixed_width_values():
    """No key or index column is `text` (MySQL cannot index it whole): keys stay within 191 characters."""
    for spec in all_tables().values():
        keys = {*spec.primary_key, *(c for idx in spec.indexes for c in idx)}
        kinds = {spec.column(k).kind for k in keys}
        assert "text" not in kinds, spec.name
        assert np.all([spec.column(k).kind in ("str", "datetime", "date", "int") for k in keys]), spec.name
