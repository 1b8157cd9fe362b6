"""Every check result says what it judged, and a check with nothing to judge says so (issue 20, items 2-3).

The project's real graph and checks in replay mode, on a temporary SQLite warehouse. Expected
windows are computed here from the partitions definitions, independently of the checks' code.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.loader import LoadingContextForTest
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionResolvedStatus,
)
from dagster._core.test_utils import freeze_time

from crypto_assets.assets.common import range_tags
from crypto_assets_tests.graph_helpers import ProjectGraph

warnings.filterwarnings("ignore", category=dg.BetaWarning)

NINE_HOURS = ("2021-05-15-00:00", "2021-05-15-08:00")  # inside the recorded CoinGecko window
CHAIN = ("price_observations", "ohlcv_bars", "technical_indicators", "ml_features", "market_regimes",
         "market_anomalies")
LOOKBACK_CHECKS = ("no_gaps", "price_jumps_within_bounds")
# One ranged run per dataset (the hourly price chain: the nine hours above), where recordings exist.
RANGES = {
    "news_articles": ("2023-03-13-09:00", "2023-03-13-11:00"),
    "social_posts": ("2023-03-13-09:00", "2023-03-13-11:00"),
    "sentiment_scores": ("2023-03-13-09:00", "2023-03-13-11:00"),
    "news_narratives": ("2023-03-13-09:00", "2023-03-13-11:00"),
    "macro_series": ("2020-01-01", "2020-01-03"),
    "onchain_metrics": ("2022-12-26", "2022-12-30"),
    "exchange_candles": ("2024-01-30-16:00", "2024-01-30-18:00"),
    "derivatives_metrics": ("2024-11-04-13:00", "2024-11-04-14:00"),
    "fear_greed_index": ("2021-05-14", "2021-05-15"),
}


def expected_window(partitions_def, first: str, last: str, lookback: bool = False) -> str:
    """`<first>...<last> (N partitions)[ and the 23 before]: [start, end)` for the partitions first..last."""
    keys = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))
    start = partitions_def.time_window_for_partition_key(first).start
    end = partitions_def.time_window_for_partition_key(last).end
    label = first if first == last else f"{first}...{last} ({len(keys)} partitions)"
    if lookback:
        step = partitions_def.time_window_for_partition_key(first)
        start -= (step.end - step.start) * 23
        label += " and the 23 before"
    return f"{label}: [{start.isoformat()}, {end.isoformat()})"


def check_names(graph: ProjectGraph, asset: str) -> set[str]:
    return {k.name for c in graph.checks for k in c.check_keys if k.asset_key == dg.AssetKey(asset)}


def not_evaluated(instance, run_id: str) -> dict[str, str]:
    """{"asset:check": the run-log line} of the checks that said they had nothing to judge."""
    lines = [e.user_message for e in instance.all_logs(run_id) if " not evaluated (" in (e.user_message or "")]
    return {line.split(" ", 1)[0]: line for line in lines}


@pytest.fixture(scope="module")
def instance(graph):
    with dg.instance_for_test() as inst:
        graph.materialize(inst, ["coin_universe"])
        yield inst


@pytest.fixture(scope="module")
def nine_hours(graph, instance):
    """One ranged run of the hourly price chain over nine old hours (as a backfill chunk would be)."""
    return graph.materialize(instance, list(CHAIN), range_=NINE_HOURS)


def assert_windows(graph, instance, result, asset: str, first: str | None, last: str | None) -> dict:
    """Every check of `asset` either evaluated, with `window` = exactly the run's partitions (plus the
    stated lookback for gap and jump checks), or said in the run's log why it had nothing to judge."""
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()
                   if e.asset_key == dg.AssetKey(asset)}
    skipped = {name.split(":", 1)[1] for name in not_evaluated(instance, result.run_id) if name.startswith(asset + ":")}
    assert set(evaluations) | skipped == check_names(graph, asset), asset
    assert not set(evaluations) & skipped, asset
    partitions_def = graph.defs.resolve_asset_graph().get(dg.AssetKey(asset)).partitions_def
    for name, evaluation in evaluations.items():
        assert "window" in evaluation.metadata and "scope" in evaluation.metadata, (asset, name)
        window = evaluation.metadata["window"].value
        if first is None:
            assert window == "all rows", (asset, name, window)
            assert evaluation.metadata["scope"].value == "live", (asset, name)
            continue
        assert window == expected_window(partitions_def, first, last, name in LOOKBACK_CHECKS), (asset, name, window)
        # Old hours, not a backfill: the scope names the range.
        assert evaluation.metadata["scope"].value == f"range {first}...{last}", (asset, name)
    return evaluations


@pytest.mark.slow
def test_every_check_of_a_nine_hour_run_names_exactly_those_nine_hours(graph, instance, nine_hours):
    for asset in CHAIN:
        assert_windows(graph, instance, nine_hours, asset, *NINE_HOURS)
    # quarantine_share used to judge the range and the 23 hours before, without saying so.
    quarantine = {e.check_name: e for e in nine_hours.get_asset_check_evaluations()
                  if e.asset_key == dg.AssetKey("price_observations")}["quarantine_share"]
    stored = sum(m.metadata["dagster/row_count"].value for m in nine_hours.asset_materializations_for_node(
        "price_observations"))
    assert quarantine.metadata["stored"].value == stored > 0


@pytest.mark.slow
def test_every_check_of_every_dataset_names_the_window_it_judged(graph, instance, nine_hours, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_windows(graph, instance, graph.materialize(instance, ["coin_universe"]), "coin_universe", None, None)
    done = {"coin_universe", *CHAIN}
    for asset, (first, last) in RANGES.items():
        result = graph.materialize(instance, [asset], range_=(first, last), raise_on_error=False)
        assert result.success, asset
        assert_windows(graph, instance, result, asset, first, last)
        done.add(asset)
    every = {k.asset_key.to_user_string() for c in graph.checks for k in c.check_keys}
    assert done == every, "a dataset with checks is not covered: add it to RANGES"


@pytest.mark.slow
def test_a_check_with_nothing_to_judge_is_skipped_with_its_reason(graph, instance, nine_hours):
    """The open hour lands with no bar while the 23 hours before hold bars (the incident: no_gaps
    "passed" on it and resolved an alert). has_rows judges it (fails); no_gaps, price jumps and
    quarantine share have nothing to judge: no result (Dagster shows "Skipped") and a log line why."""
    hour = "2021-05-15-16:00"  # the hour that just closed; the recordings end at 14:39
    with freeze_time(datetime(2021, 5, 15, 17, 10, tzinfo=timezone.utc)):
        result = graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"],
                                   partition=hour)
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    rows = evaluations[("technical_indicators", "has_rows")]
    assert not rows.passed and rows.metadata["rows"].value == 0
    for asset, check in (("ohlcv_bars", "no_gaps"), ("technical_indicators", "no_gaps"),
                         ("ohlcv_bars", "price_jumps_within_bounds"), ("price_observations", "quarantine_share")):
        assert (asset, check) not in evaluations, (asset, check)
    assert rows.metadata["scope"].value == "live"  # the newest hours
    logged = not_evaluated(instance, result.run_id)
    hour_start = datetime(2021, 5, 15, 16, tzinfo=timezone.utc)
    assert logged["technical_indicators:no_gaps"] == (
        f"technical_indicators:no_gaps not evaluated (live; {hour} and the 23 before: "
        f"[{(hour_start - timedelta(hours=23)).isoformat()}, {(hour_start + timedelta(hours=1)).isoformat()})): "
        f"no bar in {hour}: nothing to look for gaps in")
    assert "price_observations:quarantine_share" in logged
    # What the UI shows: the check was planned and the run succeeded without a result, i.e. "Skipped".
    key = dg.AssetCheckKey(dg.AssetKey("technical_indicators"), "no_gaps")
    (record,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    assert record.run_id == result.run_id and record.status == AssetCheckExecutionRecordStatus.PLANNED
    status = asyncio.run(record.resolve_status(LoadingContextForTest(instance)))
    assert status == AssetCheckExecutionResolvedStatus.SKIPPED


@pytest.mark.slow
def test_a_backfill_chunk_states_its_backfill_as_scope(graph, instance, nine_hours):
    tags = {**range_tags("2021-05-15-02:00", "2021-05-15-04:00"), "dagster/backfill": "chunk01"}
    result = dg.materialize([*graph.assets, *graph.checks], selection=dg.AssetSelection.assets("price_observations"),
                            instance=instance, resources=graph.resources, tags=tags)
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all("scope" in e.metadata for e in evaluations)
    assert {e.metadata["scope"].value for e in evaluations} == {"backfill chunk01"}
