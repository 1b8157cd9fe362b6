"""Latest-partition freshness: is the newest hourly partition recent?

Dagster's FreshnessPolicy measures time since the last materialization of ANY partition, so a
backfill of a weeks-old hour makes a stale asset look fresh. This check looks at the newest
materialized partition instead: it warns when that partition ended more than 2 h ago and fails
(ERROR) beyond 4 h. It runs with each materialization and from the periodic check schedule.
"""


from datetime import datetime, timedelta

import dagster as dg
from dagster._time import get_current_datetime  # the clock Dagster's own freshness uses (freezable in tests)

WARN_AFTER = timedelta(hours=2)
FAIL_AFTER = timedelta(hours=4)
CHECK_NAME = "latest_partition_fresh"


def partition_lag(instance: dg.DagsterInstance, key: dg.AssetKey, partitions_def, now: datetime):
    """(newest materialized partition key, how long ago it ended) or (None, None)."""
    keys = instance.get_materialized_partitions(key)
    if not keys:
        return None, None
    windows = {k: partitions_def.time_window_for_partition_key(k) for k in keys}
    newest = max(windows, key=lambda k: windows[k].end)
    return newest, max(timedelta(0), now - windows[newest].end)


def missing_since(partitions_def, newest: str, now: datetime) -> list[str]:
    """Partition keys after `newest` whose window has started by `now`."""
    start = partitions_def.time_window_for_partition_key(newest).end
    if start >= now:
        return []
    window = dg.TimeWindow(start, now)
    return [k for k in partitions_def.get_partition_keys_in_time_window(window)
            if partitions_def.time_window_for_partition_key(k).start < now]


def freshness_state(lag: timedelta | None) -> str:
    if lag is None:
        return "UNKNOWN"
    if lag > FAIL_AFTER:
        return "FAIL"
    if lag > WARN_AFTER:
        return "WARN"
    return "PASS"


def latest_partition_check(asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    key, partitions_def = asset.key, asset.partitions_def

    @dg.asset_check(asset=key, name=CHECK_NAME,
                    description="The newest materialized partition ended less than 2 h ago (warn) / 4 h ago (fail).")
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        newest, lag = partition_lag(context.instance, key, partitions_def, get_current_datetime())
        state = freshness_state(lag)
        # The hours with no partition since the newest one: what a backfill must fill.
        missing = missing_since(partitions_def, newest, get_current_datetime()) if newest else []
        return dg.AssetCheckResult(
            passed=state == "PASS",
            severity=dg.AssetCheckSeverity.ERROR if state in ("FAIL", "UNKNOWN") else dg.AssetCheckSeverity.WARN,
            description=f"newest partition {newest or 'none'}: {state}",
            metadata={"newest_partition": newest or "none", "state": state,
                      "missing_partitions": len(missing),
                      "missing_partition_keys": dg.MetadataValue.json(missing[:200]),
                      "lag_hours": round(lag.total_seconds() / 3600, 2) if lag is not None else -1.0},
        )

    return check


def latest_partition_checks(assets: list) -> list:
    return [
        latest_partition_check(a)
        for a in assets
        if isinstance(a, dg.AssetsDefinition) and a.partitions_def is not None
        and isinstance(a.partitions_def, dg.TimeWindowPartitionsDefinition)
        and a.partitions_def.cron_schedule.startswith("0 * ")
    ]


# Every check of the code location, every 10 minutes, so staleness shows even when nothing runs.
CHECKS_JOB = dg.define_asset_job("asset_checks_job", selection=dg.AssetSelection.all_asset_checks())
CHECKS_SCHEDULE = dg.ScheduleDefinition(
    name="asset_checks_every_10_min", job=CHECKS_JOB, cron_schedule="*/10 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
