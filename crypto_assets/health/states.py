"""What the Dagster instance knows about each dataset: freshness, asset checks, last materialization.

Shared by the health score (`crypto_assets.health`) and the alert sensors (`crypto_assets.alerts`).
Everything is read from the instance through its public storage methods; nothing here knows
which checks or policies exist: `datasets_in` takes them from the code location's asset graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._time import get_current_datetime

# Freshness states as the FreshnessDaemon writes them (dagster FreshnessState values).
PASS, WARN, FAIL, UNKNOWN, NOT_APPLICABLE = "PASS", "WARN", "FAIL", "UNKNOWN", "NOT_APPLICABLE"
# How bad a freshness state is, for taking the worse of two opinions.
_FRESHNESS_BADNESS = {NOT_APPLICABLE: 0, PASS: 1, WARN: 2, UNKNOWN: 3, FAIL: 4}

# Groups whose assets are about the platform itself, not datasets.
PLATFORM_GROUPS = ("health",)


@dataclass(frozen=True)
class Dataset:
    """One asset the platform promises to keep healthy: its checks and freshness policy."""

    key: dg.AssetKey
    group: str | None = None
    check_keys: tuple[dg.AssetCheckKey, ...] = ()
    freshness_policy: dg.FreshnessPolicy | None = None

    @property
    def name(self) -> str:
        return self.key.to_user_string()


def datasets_in(asset_graph, exclude_groups: Sequence[str] = PLATFORM_GROUPS) -> list[Dataset]:
    """The materializable assets of an asset graph (`Definitions.resolve_asset_graph()` or
    `context.repository_def.asset_graph`), with their checks and freshness policies."""
    found = []
    for node in asset_graph.asset_nodes:
        if not node.is_materializable or node.group_name in exclude_groups:
            continue
        found.append(Dataset(
            key=node.key,
            group=node.group_name,
            check_keys=tuple(sorted(node.check_keys, key=lambda k: k.name)),
            freshness_policy=node.freshness_policy_or_from_metadata,
        ))
    return sorted(found, key=lambda d: d.name)


def as_datasets(items: Iterable[Dataset | dg.AssetKey | str]) -> list[Dataset]:
    """Datasets from Datasets, AssetKeys or asset names (bare keys carry no checks or policy)."""
    out = []
    for item in items:
        if isinstance(item, Dataset):
            out.append(item)
        else:
            out.append(Dataset(key=dg.AssetKey.from_coercible(item)))
    return out


@dataclass(frozen=True)
class CheckState:
    """The latest completed execution of one asset check."""

    key: dg.AssetCheckKey
    passed: bool
    severity: str  # "ERROR" or "WARN"
    executed_at: datetime
    partition: str | None = None
    description: str | None = None

    @property
    def label(self) -> str:
        """PASSED, or FAILED_WARN / FAILED_ERROR: the state an alert is about."""
        return "PASSED" if self.passed else f"FAILED_{self.severity}"


def check_states(instance: dg.DagsterInstance,
                 check_keys: Sequence[dg.AssetCheckKey]) -> dict[dg.AssetCheckKey, CheckState]:
    """Latest completed (passed or failed) execution per check; checks never run are absent.

    A check that is planned or running right now keeps its previous completed result, so a
    failed check does not look healthy while it is being re-run.
    """
    if not check_keys:
        return {}
    summaries = instance.event_log_storage.get_asset_check_summary_records(list(check_keys))
    states = {}
    for key, summary in summaries.items():
        record = summary.last_completed_check_execution_record
        evaluation = record.evaluation if record else None
        if record is None or evaluation is None:
            continue
        states[key] = CheckState(
            key=key,
            passed=record.status == AssetCheckExecutionRecordStatus.SUCCEEDED,
            severity=evaluation.severity.value,
            executed_at=datetime.fromtimestamp(record.create_timestamp, timezone.utc),
            partition=record.partition or evaluation.partition,
            description=evaluation.description,
        )
    return states


def daemon_freshness_states(instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """Freshness states as last written by the FreshnessDaemon; assets it never evaluated are absent."""
    if not keys:
        return {}
    return {key: record.freshness_state.value
            for key, record in instance.get_freshness_state_records(list(keys)).items()}


@dataclass(frozen=True)
class LastMaterialization:
    at: datetime
    newest_partition: str | None  # newest partition ever materialized (not the latest run's)


def last_materializations(instance: dg.DagsterInstance,
                          datasets: Sequence[Dataset]) -> dict[dg.AssetKey, LastMaterialization]:
    """When each asset last materialized (any partition), and its newest materialized partition.

    The newest partition is the maximum key: time-window partition keys (2021-05-14-15:00,
    2021-05-14) sort in time order, and a backfill of old hours does not move it.
    """
    events = instance.get_latest_materialization_events([d.key for d in datasets])
    out = {}
    for dataset in datasets:
        event = events.get(dataset.key)
        if event is None:
            continue
        partitions = instance.get_materialized_partitions(dataset.key)
        out[dataset.key] = LastMaterialization(
            at=datetime.fromtimestamp(event.timestamp, timezone.utc),
            newest_partition=max(partitions) if partitions else None,
        )
    return out


def evaluate_time_window(policy, last_at: datetime | None, now: datetime) -> str | None:
    """The state a time-window freshness policy gives, by the daemon's own rule; None for other policies."""
    fail_window = getattr(policy, "fail_window", None)  # only time-window policies have one
    if fail_window is None:
        return None
    if last_at is None:
        return UNKNOWN
    age = now - last_at
    if age >= fail_window.to_timedelta():
        return FAIL
    if policy.warn_window is not None and age >= policy.warn_window.to_timedelta():
        return WARN
    return PASS


def worse_freshness(*states: str | None) -> str | None:
    known = [s for s in states if s is not None]
    return max(known, key=lambda s: _FRESHNESS_BADNESS.get(s, 3)) if known else None


def utcnow() -> datetime:
    """Dagster's clock (UTC): the one its freshness daemon uses, frozen by `freeze_time` in tests."""
    return get_current_datetime()


def format_age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def freshness_of(datasets: Sequence[Dataset], daemon: Mapping[dg.AssetKey, str],
                 last: Mapping[dg.AssetKey, LastMaterialization], now: datetime) -> dict[dg.AssetKey, tuple[str, str]]:
    """(state, source) per dataset: the daemon's state, or our evaluation of the same policy where
    that is worse (a stopped daemon must not keep showing PASS). Source says which: daemon/policy/none."""
    out = {}
    for dataset in datasets:
        recorded = daemon.get(dataset.key)
        mat = last.get(dataset.key)
        computed = evaluate_time_window(dataset.freshness_policy, mat.at if mat else None, now)
        if dataset.freshness_policy is None:
            out[dataset.key] = (NOT_APPLICABLE if mat else UNKNOWN, "none")
        elif recorded is None and computed is None:
            out[dataset.key] = (UNKNOWN, "none")
        else:
            state = worse_freshness(recorded, computed)
            out[dataset.key] = (state, "daemon" if state == recorded else "policy")
    return out
