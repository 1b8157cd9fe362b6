"""What the daily ingest assets (macro, on-chain) share.

- A per-series 4xx (unknown symbol, no replay recording) costs that series only and is
  reported; anything else (429/5xx after retries, network down) means the source is down and
  fails the run, so the gap stays visible.
- A value is kept only once it is final: its `available_at` must not be after the time the
  provider answered (the response's Date header; the recording time in replay mode).
- Live runs cover a trailing range of days as ONE run: daily values are published after
  their day (FRED monthly series weeks after), so the latest days are re-fetched until final.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import ranged_schedule
from crypto_assets.partitions import DAILY
from crypto_assets.sources.client import SourceError

PER_SERIES_STATUSES = frozenset({400, 404, 422})


def per_series_failure(exc: SourceError) -> bool:
    return exc.status in PER_SERIES_STATUSES


def in_window(dates: pd.Series, start, end) -> pd.Series:
    """Which dates (datetime.date) lie in the UTC window [start, end)."""
    as_time = pd.to_datetime(dates).dt.tz_localize("UTC")
    return (as_time >= pd.Timestamp(start)) & (as_time < pd.Timestamp(end))


def not_final(available_at: pd.Series, answered_at: datetime | None) -> pd.Series:
    """Values that were not final yet when the provider answered (e.g. today's open session)."""
    if answered_at is None:
        return pd.Series(False, index=available_at.index)
    return available_at > pd.Timestamp(answered_at)


def trailing_days_schedule(asset_key: str, *, name: str, cron: str, days: int,
                           default_status=dg.DefaultScheduleStatus.RUNNING) -> dg.ScheduleDefinition:
    """Materialize the last `days` daily partitions (up to yesterday's or today's) in one run."""
    return ranged_schedule(
        asset_key, name=name, cron=cron, default_status=default_status,
        keys_for=lambda now: trailing_day_range(now, days),
        description=f"Re-materializes the last {days} daily partitions of {asset_key} as one ranged run, "
        "so values published after their day land once they are final.",
    )


def trailing_day_range(now, days: int) -> tuple[str, str]:
    """Keys of the last `days` complete-or-current daily partitions ending at `now`'s day."""
    if days < 1:
        raise ValueError("days must be >= 1")
    now = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    keys = DAILY.get_partition_keys(current_time=now.to_pydatetime())  # DAILY ends with yesterday
    last = keys[-1]
    first_time = max(pd.Timestamp(last) - timedelta(days=days - 1), pd.Timestamp(keys[0]))
    return first_time.strftime("%Y-%m-%d"), last
