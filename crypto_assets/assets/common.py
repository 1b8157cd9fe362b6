"""Small pieces every asset module shares."""

from __future__ import annotations

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
