"""DataFrame -> JSON for responses and feed messages.

orjson instead of `json`: ~2.5x faster on the 170-column feature rows, and unlike
`DataFrame.to_json` it keeps every float exactly (to_json rounds to at most 15 decimals:
1.2345678901234e-9 becomes 1.234568e-9). NaN and infinities become null.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pandas as pd


def iso(value) -> str | None:
    """ISO 8601 UTC with a Z, e.g. 2025-10-01T12:00:00Z (microseconds only when present)."""
    if value is None or value is pd.NaT:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    text = ts.tz_localize(None).isoformat()
    return text + "Z"


def _iso_column(s: pd.Series) -> list:
    naive = s.to_numpy(dtype="datetime64[us]")  # tz-aware values come out as UTC wall times
    known = naive[~np.isnat(naive)]
    whole_seconds = bool((known.astype("int64") % 1_000_000 == 0).all())
    text = np.datetime_as_string(naive, unit="s" if whole_seconds else "us").tolist()
    return [None if t == "NaT" else t + "Z" for t in text]


def _plain_column(s: pd.Series) -> list:
    values = s.to_numpy(dtype=object, na_value=None).tolist()  # ints, bools, strings; NA -> None
    if s.dtype == object:
        return [v.isoformat() if isinstance(v, dt.date) else v for v in values]
    return values


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of JSON-ready values, converted column-wise (all float columns at once)."""
    names = [str(n) for n in frame.columns]
    columns: list[list | None] = [None] * len(names)
    floats = [i for i, dtype in enumerate(frame.dtypes) if dtype.kind == "f"]
    if floats:
        block = frame.iloc[:, floats].to_numpy(dtype="float64").T.tolist()
        for i, values in zip(floats, block):
            columns[i] = values
    for i in range(len(names)):
        if columns[i] is None:
            s = frame.iloc[:, i]
            columns[i] = _iso_column(s) if s.dtype.kind == "M" else _plain_column(s)
    if not names:
        return [{} for _ in range(len(frame))]
    return [dict(zip(names, row)) for row in zip(*columns)]


def dumps(payload) -> bytes:
    return orjson.dumps(payload)


def loads(data: bytes | str):
    return orjson.loads(data)
