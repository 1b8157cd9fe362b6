"""Small pieces every asset module shares."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

# Historical ranges run as ONE run over the whole range (not one run per hour).
SINGLE_RUN = dg.BackfillPolicy.single_run()


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
