"""What the Dagster instance knows about each dataset: freshness, asset checks, last materialization.

Shared by the health score (`crypto_assets.health`) and the alert sensors (`crypto_assets.alerts`).
Everything is read from the instance through its public storage methods; nothing here knows
which checks or policies exist: `datasets_in` takes them from the code location's asset graph.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

from crypto_assets.checks.scope import is_live
from crypto_assets.dagster_internals import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    AssetCheckExecutionRecordStatus,
    get_current_datetime,
)
from crypto_assets.freshness import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, WARN, DataFreshness, evaluate
from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets.warehouse.store import Warehouse

# How bad a freshness state is, for taking the worse of two opinions.
_FRESHNESS_BADNESS = {NOT_APPLICABLE: 0, PASS: 1, WARN: 2, UNKNOWN: 3, FAIL: 4}

# Asset metadata marking a source a user may not have set up (see automation/policies.py).
OPTIONAL_SOURCE_KEY = "crypto_assets/optional_source"
# ... and the environment variables that configure it (comma-separated; all must be set).
OPTIONAL_SOURCE_ENV_KEY = "crypto_assets/optional_source_env"

# Completed results read per check to find its newest one about the live window.
CHECK_HISTORY = 10

# Groups whose assets are about the platform itself, not datasets.
PLATFORM_GROUPS = ("health",)


@dataclass(frozen=True)
class Dataset:
    """One asset the platform promises to keep healthy: its checks and freshness policy."""

    key: dg.AssetKey
    group: str | None = None
    check_keys: tuple[dg.AssetCheckKey, ...] = ()
    freshness_policy: dg.FreshnessPolicy | None = None
    optional_source: str | None = None  # what its source needs, for a source a user may not set up
    optional_env: tuple[str, ...] = ()  # the environment variables that configure that source

    @property
    def configured(self) -> bool:
        """False for an optional source while one of its variables is unset (in this process's
        environment: the health CLI's, the health asset's run's)."""
        return not self.optional_source or all(os.environ.get(name) for name in self.optional_env)

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
            optional_source=_text(node.metadata.get(OPTIONAL_SOURCE_KEY)),
            optional_env=tuple(v for v in (_text(node.metadata.get(OPTIONAL_SOURCE_ENV_KEY)) or "").split(",") if v),
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
    window: str | None = None  # what the check judged (its `window` metadata)

    @property
    def label(self) -> str:
        """PASSED, or FAILED_WARN / FAILED_ERROR: the state an alert is about."""
        return "PASSED" if self.passed else f"FAILED_{self.severity}"


def check_states(instance: dg.DagsterInstance,
                 check_keys: Sequence[dg.AssetCheckKey]) -> dict[dg.AssetCheckKey, CheckState]:
    """Per check, its newest completed (passed or failed) result about the LIVE window among its
    last CHECK_HISTORY results, else its newest completed result; checks never run are absent.

    A backfill's pass is about its range (invariant 13): it never hides a live failure. A check
    that is planned or running right now keeps its previous completed result, so a failed check
    does not look healthy while it is being re-run.
    """
    states = {}
    for key in check_keys:
        history = [r for r in instance.event_log_storage.get_asset_check_execution_history(
            key, limit=CHECK_HISTORY, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES) if r.evaluation]
        if not history:
            continue
        record = next((r for r in history if is_live(_text(r.evaluation.metadata.get("scope")))), history[0])
        evaluation = record.evaluation
        states[key] = CheckState(
            key=key,
            passed=record.status == AssetCheckExecutionRecordStatus.SUCCEEDED,
            severity=evaluation.severity.value,
            executed_at=datetime.fromtimestamp(record.create_timestamp, timezone.utc),
            partition=record.partition or evaluation.partition,
            description=evaluation.description,
            window=_text(evaluation.metadata.get("window")),
        )
    return states


def _text(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def recorded_freshness_states(instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """Freshness states as recorded in Dagster (the UI badge); assets never evaluated are absent."""
    if not keys:
        return {}
    return {key: record.freshness_state.value
            for key, record in instance.get_freshness_state_records(list(keys)).items()}


def last_materialized_at(instance: dg.DagsterInstance, datasets: Sequence[Dataset]) -> dict[dg.AssetKey, datetime]:
    """When each asset last materialized (any partition): when a run last wrote it, NOT how new its
    data is (that is `crypto_assets.freshness`)."""
    events = instance.get_latest_materialization_events([d.key for d in datasets])
    return {key: datetime.fromtimestamp(event.timestamp, timezone.utc) for key, event in events.items() if event}


def data_freshness(datasets: Sequence[Dataset], now: datetime, warehouse: Warehouse | None = None
                   ) -> dict[dg.AssetKey, DataFreshness]:
    """Data-time freshness of every dataset that has a policy (see `crypto_assets.freshness`)."""
    with_policy = [d for d in datasets if d.freshness_policy is not None]
    if not with_policy:
        return {}
    warehouse = warehouse or get_warehouse()
    return {d.key: evaluate(warehouse, d.name, d.freshness_policy, now) for d in with_policy}


def utcnow() -> datetime:
    """Dagster's clock (UTC), frozen by `freeze_time` in tests."""
    return get_current_datetime()


def worse_freshness(*states: str | None) -> str | None:
    known = [s for s in states if s is not None]
    return max(known, key=lambda s: _FRESHNESS_BADNESS.get(s, 3)) if known else None


def freshness_of(datasets: Sequence[Dataset], recorded: Mapping[dg.AssetKey, str],
                 data: Mapping[dg.AssetKey, DataFreshness],
                 materialized: Mapping[dg.AssetKey, datetime]) -> dict[dg.AssetKey, tuple[str, str]]:
    """(state, source) per dataset: the worse of the state recorded in Dagster (what the UI shows,
    published by `data_freshness_sensor`) and the data-time evaluation made now, so that a stopped
    sensor, or a state recorded by anything else, can never make stale data read as fresh.
    Source says which one decided: recorded / data / none."""
    out = {}
    for dataset in datasets:
        if dataset.freshness_policy is None:
            out[dataset.key] = (NOT_APPLICABLE if dataset.key in materialized else UNKNOWN, "none")
            continue
        shown = recorded.get(dataset.key)
        measured = data[dataset.key].state if dataset.key in data else None
        state = worse_freshness(shown, measured) or UNKNOWN
        out[dataset.key] = (state, "data" if state == measured else "recorded" if state == shown else "none")
    return out
