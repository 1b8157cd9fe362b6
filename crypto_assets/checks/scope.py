"""What a check evaluation is about: its SCOPE (design invariant 13).

An alert is resolved only by an evaluation of the same scope, so every evaluation has one:

- ``live``: the window reaches the newest partitions, i.e. it ends less than LIVE_PARTITIONS
  partitions before the evaluation (hourly data: 2 h, daily data: 2 days), and the run is not part
  of a backfill. The open hour's automation run, the hour that just closed (exchange candles at :02),
  the trailing news schedules, yesterday's macro day, a checks-only run on current data, and any
  unpartitioned table are live.
- ``backfill <id>``: the run belongs to a backfill (tag ``dagster/backfill``), whatever its range.
  Even a backfill of the last hours is not live: a range-wide "has rows" says nothing about the hour
  that is open now.
- ``range <first>...<last>``: any other run about older partitions (a CLI or notebook
  ``materialize`` of 2021, automation re-running an hour of yesterday, a checks-only run whose
  newest data is old).

A data check states its scope in its ``scope`` metadata (and what it judged in ``window``). For
an evaluation without that metadata (a check defined elsewhere), ``scope_of_run`` derives the same
answer from the run's tags: ``dagster/backfill``, then ``dagster/partition`` or the range tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from dagster import PartitionKeyRange

from crypto_assets.dagster_internals import CheckError

LIVE = "live"
LIVE_PARTITIONS = 2
BACKFILL_TAG = "dagster/backfill"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partitions_label(first: str, last: str, count: int | None = None) -> str:
    """`first`, or `first...last (N partitions)` (the label a check's `window` starts with)."""
    if first == last:
        return first
    return f"{first}...{last}" + (f" ({count} partitions)" if count is not None else "")


def scope_of(tags: Mapping[str, str], window_end: datetime | None, step: timedelta | None,
             partitions: str | None, at: datetime) -> str:
    """The scope of an evaluation at `at` of a window ending at `window_end` (exclusive), whose
    partitions are `step` long and labelled `partitions`, in a run with `tags`."""
    backfill = tags.get(BACKFILL_TAG)
    if backfill:
        return f"backfill {backfill}"
    if window_end is None or step is None or window_end > at - LIVE_PARTITIONS * step:
        return LIVE
    return f"range {partitions}"


def run_partitions(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """(first, last) partition keys a run was launched for, from its tags; None for no partition."""
    if tags.get(RANGE_START_TAG) and tags.get(RANGE_END_TAG):
        return tags[RANGE_START_TAG], tags[RANGE_END_TAG]
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG], tags[PARTITION_TAG]
    return None


def run_partition_keys(tags: Mapping[str, str], partitions_def) -> list[str] | None:
    """Every key of `partitions_def` from the first to the last partition a run was launched for
    (its tags); None when the tags name no partition, or keys that are not exactly
    `partitions_def`'s (another partitioning: a daily definition reads an hourly key as its day)."""
    keys = run_partitions(tags)
    if keys is None or partitions_def is None:
        return None
    try:
        found = list(partitions_def.get_partition_keys_in_range(PartitionKeyRange(*keys)))
    except (ValueError, CheckError):  # a key this definition cannot read; one before its start
        return None
    return found if found and (found[0], found[-1]) == keys else None


def scope_of_run(tags: Mapping[str, str], partitions_def, at: datetime) -> tuple[str, str | None]:
    """(scope, partitions label) of an evaluation in a run with `tags`, for an asset with
    `partitions_def` (None: unpartitioned). Used when the evaluation does not state its scope."""
    keys = run_partitions(tags)
    if keys is None or partitions_def is None or not hasattr(partitions_def, "time_window_for_partition_key"):
        return scope_of(tags, None, None, None, at), (partitions_label(*keys) if keys else None)
    try:
        first = partitions_def.time_window_for_partition_key(keys[0])
        last = partitions_def.time_window_for_partition_key(keys[1])
    except Exception:  # noqa: BLE001  (a key of another partitions definition: judge it as unknown = live)
        return scope_of(tags, None, None, None, at), partitions_label(*keys)
    label = partitions_label(*keys)
    return scope_of(tags, last.end, first.end - first.start, label, at), label


def is_live(scope: str | None) -> bool:
    return scope in (None, LIVE)
