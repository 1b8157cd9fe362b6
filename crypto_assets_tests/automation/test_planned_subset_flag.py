"""Whether Dagster's DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS may be turned on, decided
through the real daemon and what the UI reads (GraphQL).

The flag makes each run emit one "materialization planned" event per asset carrying its partition
subset, instead of one per partition (far fewer instance writes for a wide backfill). Open-source
event-log storages derive an asset's failed and in-progress partitions from per-partition planned
events, so with the flag a failed chunk's partitions could read as missing instead of failed. The
project may adopt the flag only if a failed chunk still shows as failed and its re-execution works.
It does not (Dagster 1.13.27): with the flag the failed chunk reads as missing on the asset page
(partitionStats.numFailed 0), though the backfill page still counts it failed and re-execution
from failure works. So the project keeps the flag off; the flag-on case pins that behaviour, and
fails (time to reconsider) the day Dagster shows such partitions as failed.

Scenario, for both values: a backfill of 8 hourly partitions of price_observations (replay has
prices for them) in runs of 4 hours, the second run's day made unwritable by a file where Delta
Lake puts that day's data folder (a real write failure, nothing mocked). Then the fault is
removed and the backfill is re-executed from failure as the UI's "Re-execute" does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets.partitions import HOURLY
from crypto_assets.tables import all_tables
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.automation.test_live_daemon import LAUNCH_BACKFILL
from crypto_assets_tests.live_stack import LiveStack, live_stack
from crypto_assets_tests.waiting import wait_until

pytestmark = pytest.mark.slow  # starts `dg dev` and runs real backfills

ASSET = "price_observations"
FLAG = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
FIRST = datetime(2021, 5, 14, 20, tzinfo=timezone.utc)  # 20:00-23:00 on the 14th, 00:00-03:00 on the 15th
PARTITIONS = [HOURLY.get_partition_key_for_timestamp(FIRST.timestamp() + 3600 * h) for h in range(8)]
FIRST_CHUNK, FAILING_CHUNK = PARTITIONS[:4], PARTITIONS[4:]
FAILING_DAY = "2021-05-15"  # the Delta `_part` folder the second chunk writes into
TIMEOUT_S = 420
REPOSITORY = {"repositoryLocationName": "crypto_assets", "repositoryName": "__repository__"}

MATERIALIZE = """
mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
ASSET_STATUS = """
query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { __typename ... on AssetNode {
  assetPartitionStatuses { __typename ... on TimePartitionStatuses { ranges { status startKey endKey } } }
  partitionStats { numMaterialized numFailed numMaterializing numPartitions } } } }"""
BACKFILL = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill {
  status numCancelable
  assetBackfillData { assetBackfillStatuses { ... on AssetPartitionsStatusCounts {
    assetKey { path } numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized numPartitionsFailed } } }
} ... on PythonError { message } } }"""
REEXECUTE = """
mutation($p: ReexecutionParams) { reexecutePartitionBackfill(reexecutionParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def materialize_universe(stack: LiveStack) -> None:
    """coin_universe (the symbols price_observations fetches), as the UI's Materialize button does."""
    launched = stack.graphql(MATERIALIZE, {"p": {"selector": {
        **REPOSITORY, "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["coin_universe"]}]}}})
    result = launched["data"]["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", launched
    run_id = result["run"]["runId"]

    def finished():
        status = stack.graphql(RUN_STATUS, {"id": run_id})["data"]["runOrError"]["status"]
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    assert wait_until(finished, TIMEOUT_S, "the coin_universe run", alive=stack.stopped, every_s=1) == "SUCCESS"


def finished_backfill(stack: LiveStack, backfill_id: str) -> dict:
    def done():
        backfill = stack.graphql(BACKFILL, {"id": backfill_id})["data"]["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        return backfill if backfill["status"] in BACKFILL_DONE and not backfill["numCancelable"] else None

    return wait_until(done, TIMEOUT_S, f"backfill {backfill_id}", alive=stack.stopped, every_s=1)


def counts(backfill: dict) -> dict:
    (status,) = [s for s in backfill["assetBackfillData"]["assetBackfillStatuses"] if s["assetKey"]["path"] == [ASSET]]
    return {k: v for k, v in status.items() if k.startswith("num")}


def shown_statuses(stack: LiveStack) -> tuple[dict[str, str], dict]:
    """Each of PARTITIONS as the asset page shows it (MATERIALIZED, FAILED, MATERIALIZING or
    MISSING: a key in no range), and the asset's partition stats."""
    node = stack.graphql(ASSET_STATUS, {"k": {"path": [ASSET]}})["data"]["assetNodeOrError"]
    shown = dict.fromkeys(PARTITIONS, "MISSING")
    for r in node["assetPartitionStatuses"]["ranges"]:
        for key in HOURLY.get_partition_keys_in_range(dg.PartitionKeyRange(r["startKey"], r["endKey"])):
            if key in shown:
                shown[key] = r["status"]
    return shown, node["partitionStats"]


@pytest.mark.parametrize(("flag", "failed_chunk_shows"), [("false", "FAILED"), ("true", "MISSING")],
                         ids=["flag-off", "flag-on"])
def test_a_failed_chunk_shows_as_failed_only_without_the_flag(tmp_path: Path, flag: str, failed_chunk_shows: str):
    env = {"CRYPTO_BACKFILL_HOURS_PER_RUN": "4", FLAG: flag}
    with live_stack(tmp_path, env) as stack:
        materialize_universe(stack)
        # The table exists (as `crypto-assets warehouse migrate` makes it); a plain file where Delta
        # Lake creates the 15th's data folder makes every write of that day fail.
        table = all_tables()[ASSET]
        open_warehouse(f"delta://{tmp_path / 'warehouse'}").ensure_table(table)
        blocker = tmp_path / "warehouse" / table.name / f"_part={FAILING_DAY}"
        blocker.write_text("not a folder")

        launched = stack.graphql(LAUNCH_BACKFILL, {"p": {
            "partitionNames": PARTITIONS, "assetSelection": [{"path": [ASSET]}]}})
        result = launched["data"]["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", launched
        backfill = finished_backfill(stack, result["backfillId"])
        shown, stats = shown_statuses(stack)
        print(f"{FLAG}={flag} after the failed chunk: backfill {backfill['status']} {counts(backfill)}; "
              f"asset page {shown}; partitionStats {stats}")
        assert counts(backfill)["numPartitionsFailed"] == 4, backfill
        assert {k: shown[k] for k in FIRST_CHUNK} == dict.fromkeys(FIRST_CHUNK, "MATERIALIZED"), shown
        # The rule: the failed chunk reads as failed on the asset page, not as never run. Only
        # without the flag: with it, its runs' planned events carry no partition key, which is what
        # the open-source storage derives failed partitions from.
        assert {k: shown[k] for k in FAILING_CHUNK} == dict.fromkeys(FAILING_CHUNK, failed_chunk_shows), shown
        assert stats["numFailed"] == (4 if failed_chunk_shows == "FAILED" else 0), stats

        # The operator fixes the fault and re-executes the backfill from failure (the UI's Re-execute).
        blocker.unlink()
        retried = stack.graphql(REEXECUTE, {"p": {"parentRunId": result["backfillId"], "strategy": "FROM_FAILURE"}})
        retry = retried["data"]["reexecutePartitionBackfill"]
        assert retry["__typename"] == "LaunchBackfillSuccess", retried
        backfill = finished_backfill(stack, retry["backfillId"])
        shown, stats = shown_statuses(stack)
        print(f"{FLAG}={flag} after the re-execution: backfill {backfill['status']} {counts(backfill)}; "
              f"asset page {shown}; partitionStats {stats}")
        assert backfill["status"] == "COMPLETED_SUCCESS", backfill
        # Only the failed chunk was re-run, and now every partition is materialized, none failed.
        assert counts(backfill)["numPartitionsTargeted"] == 4, backfill
        assert shown == dict.fromkeys(PARTITIONS, "MATERIALIZED"), shown
        assert stats["numFailed"] == 0, stats
