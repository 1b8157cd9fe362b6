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


def numeric_problem(values: pd.Series) -> pd.Series:
    """Why each value is not a usable positive number ('' when it is)."""
    as_num = pd.to_numeric(values, errors="coerce")
    reasons = pd.Series("", index=values.index, dtype=object)
    missing = values.isna() | values.map(lambda v: v is None or (isinstance(v, str) and not v.strip()))
    non_numeric = ~missing & as_num.isna() & ~values.map(lambda v: isinstance(v, float) and np.isnan(v))
    reasons[missing | (as_num.isna() & ~non_numeric)] = "missing or NaN price"
    reasons[non_numeric] = "non-numeric price"
    reasons[~missing & as_num.notna() & ~np.isfinite(as_num.fillna(0))] = "non-finite price"
    reasons[as_num.notna() & (as_num < 0)] = "negative price"
    reasons[as_num.notna() & (as_num == 0)] = "zero price"
    return reasons
