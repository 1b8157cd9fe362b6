"""Containment of bad input: reject records with a reason, keep the good ones.

One malformed record never aborts a partition. Every rejected record is counted and kept in
the `quarantine` table with its reason, attributed to the partition run that saw it, so a
re-run of that partition replaces (never duplicates) its quarantine rows.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.store import Warehouse, to_utc, utcnow


def _jsonable(record) -> str:
    if isinstance(record, pd.Series):
        record = record.to_dict()
    return json.dumps(record, default=str, ensure_ascii=False, sort_keys=isinstance(record, dict))


@dataclass
class Rejects:
    """Rejected records collected during one asset run."""

    asset: str
    source: str
    rows: list[dict] = field(default_factory=list)

    def add(self, reason: str, record, *, key: str | None = None, at: datetime | None = None) -> None:
        self.rows.append({"reason": reason, "record": _jsonable(record), "record_key": key, "at": at})

    def reject(self, frame: pd.DataFrame, mask: pd.Series, reason: str, *, key_cols=(), time_col=None) -> pd.DataFrame:
        """Move the rows of `frame` where `mask` holds into the rejects; return the others."""
        mask = mask.fillna(True).astype(bool)
        for _, row in frame[mask].iterrows():
            key = "|".join(str(row[c]) for c in key_cols) if key_cols else None
            at = row[time_col] if time_col is not None and pd.notna(row.get(time_col)) else None
            self.add(reason, row, key=key, at=at)
        return frame[~mask]

    def __len__(self) -> int:
        return len(self.rows)

    def by_reason(self) -> dict[str, int]:
        return dict(Counter(r["reason"] for r in self.rows))

    def frame(self, window_start, window_end) -> pd.DataFrame:
        """Rows for the quarantine table; each lands in its record's partition if that is in
        the run's window, else in the window's first partition."""
        start, end = pd.Timestamp(to_utc(window_start)), pd.Timestamp(to_utc(window_end))
        now = utcnow()
        out = []
        for r in self.rows:
            at = r["at"]
            at = pd.Timestamp(to_utc(at)) if at is not None and not pd.isna(at) else None
            out.append(
                {
                    "asset": self.asset,
                    "partition_start": at if at is not None and start <= at < end else start,
                    "source": self.source,
                    "reason": r["reason"],
                    "record_key": r["record_key"],
                    "record": r["record"],
                    "ingested_at": now,
                }
            )
        return pd.DataFrame(out, columns=QUARANTINE.column_names)

    def write(self, warehouse: Warehouse, window_start, window_end) -> int:
        """Replace this asset's quarantine rows for the window (also when there are none now)."""
        return warehouse.replace_window(
            QUARANTINE, self.frame(window_start, window_end), window_start, window_end, where={"asset": self.asset}
        )


def numeric_problem(values: pd.Series, what: str = "price", *, missing_ok: bool = False,
                    zero_ok: bool = False) -> pd.Series:
    """Why each value is not a usable positive number ('' when it is).

    One strict rule for every provider payload (docs/prices.md, "Numbers"): a value is a number
    only when the provider sent a JSON number (int or float). A boolean is never a number
    (`true` is not 1), and a string is not one either: a numeric string ("48400") is rejected with
    its own reason, since neither CoinGecko nor ccxt (whose candles are floats already) documents
    strings as its format, and a payload that starts sending them has changed shape. `what` names
    the field in the reason ("price", "market cap", ...); `missing_ok`: an absent value (null,
    NaN) is fine (an optional field); `zero_ok`: zero is fine (CoinGecko's market cap of a coin
    whose supply it does not know). Negative and non-finite numbers are always rejected.
    """
    reasons = pd.Series("", index=values.index, dtype=object)
    if pd.api.types.is_bool_dtype(values.dtype):
        reasons[:] = f"boolean {what}, not a number"
        return reasons
    if pd.api.types.is_numeric_dtype(values.dtype):  # numbers only (a parsed float/int column): vectorized
        numbers = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
        kinds = pd.Series("number", index=values.index, dtype=object)
        kinds[numbers.isna()] = "missing"
    else:
        kinds = values.map(_kind_of).astype(object)
        numbers = pd.Series(np.nan, index=values.index, dtype="float64")
        is_number = kinds == "number"
        numbers[is_number] = values[is_number].astype("float64")
    if not missing_ok:
        reasons[kinds == "missing"] = f"missing or NaN {what}"
    reasons[kinds == "non-numeric"] = f"non-numeric {what}"
    reasons[kinds == "boolean"] = f"boolean {what}, not a number"
    reasons[kinds == "string"] = f"{what} sent as a string, not a JSON number"
    is_number = (kinds == "number").to_numpy()
    finite = np.isfinite(numbers.to_numpy())
    reasons[is_number & ~finite] = f"non-finite {what}"
    reasons[is_number & finite & (numbers < 0).to_numpy()] = f"negative {what}"
    if not zero_ok:
        reasons[is_number & (numbers == 0).to_numpy()] = f"zero {what}"
    return reasons


def _kind_of(value) -> str:
    """'number', 'missing', 'boolean', 'string' (a numeric string), or 'non-numeric'."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "missing" if value != value else "number"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return "missing"
        try:
            number = float(text)
        except ValueError:
            return "non-numeric"
        return "string" if np.isfinite(number) else "non-numeric"  # "NaN", "inf": not a number at all
    return "non-numeric"
