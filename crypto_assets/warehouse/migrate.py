"""Copy a whole warehouse into another (`crypto-assets warehouse migrate --from URL`), e.g. the SQLite
file of an earlier version into the Delta Lake default.

Lossless and repeatable: every table declared in code is copied month by month through the same
typed read and atomic window write every asset uses (so values, NULLs, microseconds and dates
survive exactly as they do between assets); each month replaces the same month in the target, so
a copy interrupted half-way is finished by running it again, and a second run changes nothing.
Memory stays at one month of one table. The source is only read.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.store import Warehouse


def _months(spec: TableSpec, source: Warehouse) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    times = source.read(spec, columns=[spec.time_column])[spec.time_column]
    if times.empty:
        return []
    times = pd.to_datetime(times, utc=True) if spec.column(spec.time_column).kind == "datetime" \
        else pd.to_datetime(times).dt.tz_localize("UTC")
    first = times.min().tz_convert(None).to_period("M").to_timestamp().tz_localize("UTC")
    last = times.max().tz_convert(None).to_period("M").to_timestamp().tz_localize("UTC")
    starts = pd.date_range(first, last, freq="MS", tz="UTC")
    return [(s, s + pd.offsets.MonthBegin(1)) for s in starts]


def copy_table(spec: TableSpec, source: Warehouse, target: Warehouse) -> dict:
    """Copy one table; returns {"table", "rows_read", "rows_written", "target_rows"}."""
    if not source.has_table(spec):
        return {"table": spec.name, "rows_read": 0, "rows_written": 0, "target_rows": target.count(spec),
                "note": "absent in the source"}
    read = written = 0
    if spec.time_column is None:
        frame = source.read(spec)
        read, written = len(frame), target.replace_all(spec, frame)
    else:
        for start, end in _months(spec, source):
            frame = source.read(spec, start, end)
            read += len(frame)
            written += target.replace_window(spec, frame, start, end)
    return {"table": spec.name, "rows_read": read, "rows_written": written, "target_rows": target.count(spec)}


def copy_warehouse(source: Warehouse, target: Warehouse, tables: dict[str, TableSpec],
                   echo: Callable[[str], None] = print) -> list[dict]:
    """Copy every table; raise RuntimeError naming the tables whose counts differ afterwards."""
    if source.display_url == target.display_url:
        raise ValueError("the source and the target are the same warehouse")
    done = []
    for spec in tables.values():
        result = copy_table(spec, source, target)
        done.append(result)
        echo(f"{spec.name}: {result['rows_read']} rows copied"
             + (f" ({result['note']})" if "note" in result else ""))
    short = [r["table"] for r in done if r["rows_read"] != r["target_rows"]]
    if short:
        raise RuntimeError(f"after the copy these tables hold a different number of rows than the source: {short} "
                           "(the target already held rows outside the source's months?)")
    return done
