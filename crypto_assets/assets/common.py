"""Small pieces every asset module shares."""

from __future__ import annotations

import os
from collections.abc import Callable

import dagster as dg

# How many hours of history one backfill run covers. A backfill of a longer range becomes several
# runs of this size (BackfillPolicy.multi_run), so a run's memory does not grow with the range
# (measured: benchmarks/results.json "scale"); each run replaces exactly its own window, so a
# failed run is re-run alone ("Re-execute" / the backfill's retry) and the rest stays done.
# 0 = one run for any range (BackfillPolicy.single_run; needed by `dg launch --partition-range`).
BACKFILL_HOURS_ENV = "CRYPTO_BACKFILL_HOURS_PER_RUN"
DEFAULT_BACKFILL_HOURS = 168


def backfill_hours_per_run() -> int:
    raw = os.environ.get(BACKFILL_HOURS_ENV, "").strip()
    try:
        hours = int(raw) if raw else DEFAULT_BACKFILL_HOURS
    except ValueError:
        raise ValueError(f"{BACKFILL_HOURS_ENV}={raw!r}: expected a whole number of hours (0 = one run)") from None
    if hours < 0:
        raise ValueError(f"{BACKFILL_HOURS_ENV}={raw!r}: expected 0 or more hours")
    return hours


def backfill_policy(hours_per_partition: int = 1) -> dg.BackfillPolicy:
    """The backfill policy of an asset whose partitions span `hours_per_partition` hours."""
    hours = backfill_hours_per_run()
    if hours == 0:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=max(1, hours // hours_per_partition))


HOURLY_BACKFILL = backfill_policy(1)
DAILY_BACKFILL = backfill_policy(24)


def window_of(context: dg.AssetExecutionContext) -> dg.TimeWindow:
    """The run's time window: one partition, or the whole range of a ranged backfill."""
    return context.partition_time_window


def partition_label(context: dg.AssetExecutionContext) -> str:
    if context.has_partition_key_range:
        r = context.partition_key_range
        return r.start if r.start == r.end else f"{r.start}...{r.end}"
    return context.partition_key


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make a run cover partitions `first`..`last` (inclusive) as ONE ranged run."""
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def ranged_schedule(
    asset_key: str,
    *,
    name: str,
    cron: str,
    keys_for: Callable[[object], tuple[str, str]],
    description: str,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    """A schedule whose every tick materializes the partition keys `keys_for(tick time)` of an
    asset as one ranged run (trailing windows that re-fetch late data)."""

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone="UTC",
        target=dg.AssetSelection.assets(asset_key),
        default_status=default_status,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        return dg.RunRequest(tags=range_tags(*keys_for(context.scheduled_execution_time)))

    return _schedule
