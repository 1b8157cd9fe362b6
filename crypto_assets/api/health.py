"""Per-dataset health: latest partition, its age, and a state.

`latest_partitions` reads the newest time of each dataset through `load`;
`compute_dataset_health` turns those into states. The health-score module planned for the
project can replace `compute_dataset_health` alone (same inputs, same row shape).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crypto_assets.loading import load
from crypto_assets.tables import table
from crypto_assets.warehouse.store import WarehouseDamaged


@dataclass(frozen=True)
class Freshness:
    partition: str  # "hour", "day" or "none" (not partitioned: age of the last refresh)
    warn_after: pd.Timedelta
    fail_after: pd.Timedelta


_HOURLY = Freshness("hour", pd.Timedelta("2h"), pd.Timedelta("4h"))  # DESIGN.md: warn 2 h, fail 4 h
DATASETS: dict[str, Freshness] = {
    "coin_universe": Freshness("none", pd.Timedelta("7D"), pd.Timedelta("30D")),
    "price_observations": _HOURLY,
    "ohlcv_bars": _HOURLY,
    "news_articles": _HOURLY,
    "social_posts": _HOURLY,
    "sentiment_scores": _HOURLY,
    "technical_indicators": _HOURLY,
    "ml_features": _HOURLY,
    # Daily series: a value for day D is complete only after D; markets close on weekends.
    "macro_series": Freshness("day", pd.Timedelta("4D"), pd.Timedelta("7D")),
    "onchain_metrics": Freshness("day", pd.Timedelta("2D"), pd.Timedelta("3D")),
}

NOT_DECLARED = "not_declared"
DAMAGED = "damaged"


@dataclass(frozen=True)
class Damaged:
    """A dataset whose table could not be read because its storage is damaged (never "empty")."""

    problem: str


def latest_partitions(warehouse_url: str | None) -> dict[str, pd.Timestamp | None | str | Damaged]:
    """Newest time of each dataset (UTC): None when empty, NOT_DECLARED when the build has no such
    table, `Damaged` when its table is damaged (other failures to read raise: the warehouse is down)."""
    latest: dict[str, pd.Timestamp | None | str | Damaged] = {}
    for name in DATASETS:
        try:
            spec = table(name)
        except KeyError:
            latest[name] = NOT_DECLARED
            continue
        try:
            if spec.time_column is None:
                frame = load(name, columns=["ingested_at"], warehouse_url=warehouse_url)
                value = frame["ingested_at"].max() if len(frame) else None
            else:
                frame = load(name, columns=[spec.time_column], warehouse_url=warehouse_url, newest_first=True,
                             limit=1)
                value = frame[spec.time_column].iloc[0] if len(frame) else None
        except WarehouseDamaged as exc:
            latest[name] = Damaged(exc.problem)
            continue
        latest[name] = None if value is None or pd.isna(value) else _utc(value)
    return latest


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def compute_dataset_health(latest: dict[str, pd.Timestamp | None | str], now: pd.Timestamp) -> list[dict]:
    """One row per dataset: name, latest_partition, latest_time, age_seconds, state, detail.

    States: ok, warn (older than the warn window), stale (older than the fail window),
    empty (declared, no rows), damaged (its table's storage is damaged: unreadable, not empty),
    not_declared (this build has no such table).
    """
    rows = []
    for name, freshness in DATASETS.items():
        value = latest.get(name)
        row = {"dataset": name, "latest_partition": None, "latest_time": None, "age_seconds": None}
        if isinstance(value, Damaged):
            rows.append({**row, "state": DAMAGED, "detail": f"its table is damaged: {value.problem}"})
            continue
        if value == NOT_DECLARED:
            rows.append({**row, "state": NOT_DECLARED, "detail": "no such table in this build"})
            continue
        if value is None:
            rows.append({**row, "state": "empty", "detail": "no rows yet: materialize the asset"})
            continue
        age = now - value
        if freshness.partition == "hour":
            partition = value.floor("h").strftime("%Y-%m-%d-%H:%M")  # Dagster's hourly partition key
        elif freshness.partition == "day":
            partition = value.strftime("%Y-%m-%d")
        else:
            partition = None
        if age > freshness.fail_after:
            state, detail = "stale", f"older than {_human(freshness.fail_after)}"
        elif age > freshness.warn_after:
            state, detail = "warn", f"older than {_human(freshness.warn_after)}"
        else:
            state, detail = "ok", f"within {_human(freshness.warn_after)}"
        rows.append({**row, "latest_partition": partition, "latest_time": value,
                     "age_seconds": round(age.total_seconds(), 1), "state": state, "detail": detail})
    return rows


def _human(span: pd.Timedelta) -> str:
    hours = span / pd.Timedelta("1h")
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


STATE_ORDER = ("ok", "warn", "empty", "stale", DAMAGED)


def overall_state(rows: list[dict]) -> str:
    """Worst state among declared datasets."""
    states = [r["state"] for r in rows if r["state"] in STATE_ORDER]
    return max(states, key=STATE_ORDER.index) if states else "empty"
