"""Freshness on DATA time: how old is the newest row of a dataset, against its policy's windows.

Dagster's own FreshnessDaemon measures time since the last materialization of ANY partition, so a
backfill of 2021, a replay of recorded payloads or a live run that lands zero rows would all read
as "fresh". Here the measured time is the newest data time in the warehouse (a price's
`observed_at`, a bar's close, an article's `published_at`, a macro value's `available_at`), capped
at now so that a future-dated row cannot make a dataset look fresh:

    lag = now - newest data time (<= now)
    PASS below the policy's warn window, WARN from it, FAIL from its fail window,
    UNKNOWN when the dataset has no row (or the warehouse cannot be read).

`crypto_assets.freshness.sensor` publishes these states where Dagster shows freshness (the asset's
freshness badge, `freshnessStatusInfo`), the alert sensor alerts on them and the health score
counts them: every place a user looks means "new data arrived".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from crypto_assets.tables import all_tables
from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.store import Warehouse, to_utc

PASS, WARN, FAIL, UNKNOWN, NOT_APPLICABLE = "PASS", "WARN", "FAIL", "UNKNOWN", "NOT_APPLICABLE"

# The column that says when a row's information became true or known. Default: the table's
# time column (or `ingested_at` for a table without one).
DATA_TIME_COLUMNS: Mapping[str, str] = {
    "price_observations": "observed_at",
    "ohlcv_bars": "bar_end",
    "exchange_candles": "bar_end",
    "derivatives_metrics": "available_at",
    "technical_indicators": "bar_end",
    "ml_features": "asof_time",
    "market_regimes": "asof_time",
    "market_anomalies": "asof_time",
    "news_articles": "published_at",
    "social_posts": "published_at",
    "sentiment_scores": "published_at",
    "news_narratives": "available_at",
    "macro_series": "available_at",
    "onchain_metrics": "available_at",
    "fear_greed_index": "available_at",
    "coin_universe": "ingested_at",
}


@dataclass(frozen=True)
class DataFreshness:
    """A dataset's freshness on data time."""

    asset: str
    state: str
    data_time: datetime | None  # newest data time, at most `now`
    lag: timedelta | None
    warn_after: timedelta | None
    fail_after: timedelta | None
    problem: str | None = None  # why the state is UNKNOWN

    def describe(self) -> str:
        if self.data_time is None:
            return f"{self.asset}: {self.state} ({self.problem or 'no data'})"
        return f"{self.asset}: {self.state}, newest data {self.data_time:%Y-%m-%d %H:%M} UTC ({format_age(self.lag)} old)"


def policy_windows(policy) -> tuple[timedelta | None, timedelta | None]:
    """(warn, fail) windows of a time-window FreshnessPolicy; (None, None) for other policies."""
    fail = getattr(policy, "fail_window", None)
    if fail is None:
        return None, None
    warn = getattr(policy, "warn_window", None)
    return (warn.to_timedelta() if warn is not None else None), fail.to_timedelta()


def state_for(lag: timedelta | None, warn_after: timedelta | None, fail_after: timedelta | None) -> str:
    if fail_after is None:
        return NOT_APPLICABLE
    if lag is None:
        return UNKNOWN
    if lag >= fail_after:
        return FAIL
    if warn_after is not None and lag >= warn_after:
        return WARN
    return PASS


def data_time_column(spec: TableSpec) -> str:
    return DATA_TIME_COLUMNS.get(spec.name) or spec.time_column or "ingested_at"


def newest_value(warehouse: Warehouse, spec: TableSpec, column: str, now: datetime) -> datetime | None:
    """`column` of the table's newest row at or before `now` (by its indexed time column; a table
    without one: the largest value), capped at now. None for an empty or absent table."""
    if spec.time_column is None:
        values = warehouse.read(spec, columns=[column])[column].dropna()
    else:
        # `end` is exclusive: one microsecond after now keeps rows stamped exactly now.
        values = warehouse.read(
            spec, end=to_utc(now) + timedelta(microseconds=1), columns=[column],
            order_by=[spec.time_column], descending=True, limit=1,
        )[column].dropna()
    if values.empty:
        return None
    return min(to_utc(values.max()), to_utc(now))


def newest_data_time(warehouse: Warehouse, spec: TableSpec, now: datetime) -> datetime | None:
    """The newest data time of the table (see DATA_TIME_COLUMNS), at most `now`."""
    return newest_value(warehouse, spec, data_time_column(spec), now)


def evaluate(warehouse: Warehouse, asset: str, policy, now: datetime) -> DataFreshness:
    """The data-time freshness of one dataset under its policy."""
    warn_after, fail_after = policy_windows(policy)
    spec = all_tables().get(asset)
    if spec is None:
        return DataFreshness(asset, UNKNOWN, None, None, warn_after, fail_after, "no warehouse table")
    try:
        newest = newest_data_time(warehouse, spec, now)
    except (sa.exc.SQLAlchemyError, OSError, RuntimeError) as exc:  # unreachable or drifted table
        return DataFreshness(asset, UNKNOWN if fail_after else NOT_APPLICABLE, None, None, warn_after, fail_after,
                             f"cannot read the warehouse: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    lag = (to_utc(now) - newest) if newest is not None else None
    return DataFreshness(asset, state_for(lag, warn_after, fail_after), newest, lag, warn_after, fail_after,
                         None if newest is not None else "no rows yet")


def evaluate_all(warehouse: Warehouse, policies: Mapping[str, object], now: datetime) -> dict[str, DataFreshness]:
    return {asset: evaluate(warehouse, asset, policy, now) for asset, policy in policies.items()}


def format_age(lag: timedelta | None) -> str:
    if lag is None:
        return "-"
    minutes = int(lag.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d{hours % 24:02d}h"

