"""The private Dagster names the project uses, all in one place.

Dagster's public API (`import dagster as dg`) serves everything else. These names live in
private modules (`dagster._*`), which a Dagster release may move or rename without notice, so
no other project module imports `dagster._*`: they import these names from here, each with the
reason no public API serves. `crypto_assets_tests/test_dagster_internals.py` imports each one
from its private location, so a Dagster upgrade that moves one fails there, naming it.
"""

from __future__ import annotations

# What `context.repository_def` raises in a run without a repository; no public "has one" check.
from dagster._check import CheckError

# The freshness badge's state enum: public Dagster has FreshnessPolicy, not the state it reports.
from dagster._core.definitions.freshness import FreshnessState

# The runless event that sets an asset's freshness badge; no public event records one.
from dagster._core.definitions.freshness import FreshnessStateChange

# Return type of the run-worker health hook of DefaultRunLauncher (public); the type is not.
from dagster._core.launcher.base import CheckRunHealthResult

# Worker status inside a CheckRunHealthResult; not public, like the result.
from dagster._core.launcher.base import WorkerStatus

# Status filter of get_asset_check_execution_history (a check's past results); no public constant.
from dagster._core.storage.asset_check_execution_record import COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES

# Status of a record in that check history; no public enum.
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

# Dagster's clock, the one freeze_time freezes in tests (datetime.now would not); none public.
from dagster._time import get_current_datetime

__all__ = [
    "COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES",
    "AssetCheckExecutionRecordStatus",
    "CheckError",
    "CheckRunHealthResult",
    "FreshnessState",
    "FreshnessStateChange",
    "WorkerStatus",
    "get_current_datetime",
]
