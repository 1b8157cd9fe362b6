"""Checks judge the partitions their own run wrote, read from the run's plan and tags.

A run's partition tags say what it was launched for, not what it wrote: a checks-only run, or a
run that materializes a child but runs the parent's checks, carries them too and wrote nothing of
that asset. These tests would fail if such a check judged the tags' range, or if a check ran after
its asset failed or was skipped. Expected windows are computed from the partitions definitions.
"""

from __future__ import annotations

import warnings

import dagster as dg
import pytest

from crypto_assets.assets.common import range_tags
from crypto_assets.checks.data_checks import partitions_written
from crypto_assets.checks.scope import run_partition_keys
from crypto_assets.partitions import DAILY, HOURLY
from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.checks.test_signals_checks import expected_window
from crypto_assets_tests.graph_helpers import ProjectGraph

warnings.filterwarnings("ignore", category=dg.BetaWarning)

NEWEST = ("2021-05-15-00:00", "2021-05-15-02:00")  # recorded prices; the newest data of the warehouse
OLDER = ("2021-05-14-20:00", "2021-05-14-22:00")  # recorded too, before NEWEST


def windows(result, asset: str) -> dict[str, str]:
    return {e.check_name: e.metadata["window"].value for e in result.get_asset_check_evaluations()
            if e.asset_key == dg.AssetKey(asset)}


def checks_of(graph: ProjectGraph, asset: str) -> list:
    return [c for c in graph.checks if any(k.asset_key == dg.AssetKey(asset) for k in c.check_keys)]


@pytest.fixture(scope="module")
def instance(graph):
    with dg.instance_for_test() as inst:
        graph.materialize(inst, ["coin_universe"])
        graph.materialize(inst, ["price_observations", "ohlcv_bars"], range_=NEWEST)
        yield inst


def test_run_partition_keys_are_the_runs_keys_of_that_partitioning_only():
    assert run_partition_keys(range_tags(*OLDER), HOURLY) == ["2021-05-14-20:00", "2021-05-14-21:00",
                                                              "2021-05-14-22:00"]
    assert run_partition_keys({"dagster/partition": "2021-05-14-20:00"}, HOURLY) == ["2021-05-14-20:00"]
    assert run_partition_keys({"dagster/partition": "2021-05-14"}, DAILY) == ["2021-05-14"]
    assert run_partition_keys({}, HOURLY) is None
    assert run_partition_keys(range_tags(*OLDER), None) is None
    # A daily definition reads "2021-05-14-20:00" as its day: not that run's keys.
    assert run_partition_keys(range_tags(*OLDER), DAILY) is None
    assert run_partition_keys(range_tags("2021-05-14", "2021-05-15"), HOURLY) is None
    assert run_partition_keys(range_tags("2021-05-14-20:30", "2021-05-14-22:00"), HOURLY) is None
    assert run_partition_keys(range_tags("2021-05-14-22:00", "2021-05-14-20:00"), HOURLY) is None
    assert run_partition_keys(range_tags("2020-05-14-20:00", "2020-05-14-22:00"), HOURLY) is None


@pytest.mark.slow
def test_a_single_partition_run_judges_that_partition_not_the_newest(graph, instance):
    hour = "2021-05-14-21:00"
    result = graph.materialize(instance, ["price_observations"], partition=hour)
    judged = windows(result, "price_observations")
    assert judged["has_rows"] == expected_window(HOURLY, hour, hour)
    assert judged["quarantine_share"] == expected_window(HOURLY, hour, hour)
    (rows,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "has_rows"]
    assert rows.passed and rows.metadata["scope"].value == f"range {hour}"


@pytest.mark.slow
def test_a_ranged_run_judges_its_range(graph, instance):
    result = graph.materialize(instance, ["price_observations", "ohlcv_bars"], range_=OLDER)
    for asset in ("price_observations", "ohlcv_bars"):
        assert windows(result, asset)["has_rows"] == expected_window(HOURLY, *OLDER), asset
    assert windows(result, "ohlcv_bars")["no_gaps"] == expected_window(HOURLY, *OLDER, lookback=True)


@pytest.mark.slow
def test_a_checks_only_run_with_range_tags_judges_the_newest_data_not_the_tags(graph, instance):
    checks = checks_of(graph, "price_observations")
    result = dg.materialize([*graph.assets, *checks], selection=dg.AssetSelection.checks(*checks),
                            instance=instance, resources=graph.resources, tags=range_tags(*OLDER))
    window = windows(result, "price_observations")["has_rows"]
    assert window.startswith(f"{NEWEST[1]} (newest data): "), window


@pytest.mark.slow
def test_a_run_of_the_child_judges_the_parent_by_its_newest_data(graph, instance):
    """The run writes ohlcv_bars over OLDER and runs the checks of price_observations, which it
    does not materialize: only ohlcv_bars' checks judge OLDER."""
    parent_checks = checks_of(graph, "price_observations")
    selection = dg.AssetSelection.assets("ohlcv_bars") | dg.AssetSelection.checks(*parent_checks)
    result = dg.materialize([*graph.assets, *graph.checks], selection=selection, instance=instance,
                            resources=graph.resources, tags=range_tags(*OLDER))
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {"ohlcv_bars"}
    assert windows(result, "ohlcv_bars")["has_rows"] == expected_window(HOURLY, *OLDER)
    parent = windows(result, "price_observations")["has_rows"]
    assert parent.startswith(f"{NEWEST[1]} (newest data): "), parent


@pytest.mark.slow
def test_no_check_runs_for_an_asset_whose_materialization_failed_or_was_skipped(sqlite_url):
    """ohlcv_bars' write fails (a renamed column) and technical_indicators is skipped: their check
    ops never run, so nothing judges the range as written; price_observations' checks judge it."""
    get_warehouse.cache_clear()
    graph = ProjectGraph(sqlite_url)
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars"], partition=NEWEST[0])
        with get_warehouse(sqlite_url).engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE ohlcv_bars RENAME COLUMN close TO close_price")
        get_warehouse.cache_clear()
        result = graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"],
                                   range_=OLDER, raise_on_error=False)
    get_warehouse.cache_clear()
    assert not result.success
    judged = {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()}
    assert judged == {"price_observations"}
    assert windows(result, "price_observations")["has_rows"] == expected_window(HOURLY, *OLDER)
    started = {e.step_key for e in result.all_events if e.is_step_start}
    assert "price_observations_data_checks" in started and "ohlcv_bars" in started
    assert not started & {"ohlcv_bars_data_checks", "technical_indicators", "technical_indicators_data_checks"}


class _NoStore(dg.IOManager):
    def handle_output(self, context, obj):
        pass

    def load_input(self, context):
        return None


@pytest.mark.slow
def test_partitions_written_follows_the_plan_and_falls_back_to_the_events():
    """A small hourly graph a -> b whose check ops record `partitions_written`: the range of a
    ranged run; nothing in a checks-only run with range tags; the events when the tags are not
    keys of the definition asked about; and no check op of b after a's blocking check failed."""
    seen: dict[str, list] = {}
    fail_a = {"now": False}

    @dg.asset(partitions_def=HOURLY)
    def a():
        return None

    @dg.asset(partitions_def=HOURLY, deps=[a])
    def b():
        return None

    def recording(asset, blocking: bool):
        @dg.multi_asset_check(name=f"{asset.key.to_python_identifier()}_recording",
                              specs=[dg.AssetCheckSpec("recorded", asset=asset, blocking=blocking)])
        def check(context):
            name = asset.key.to_user_string()
            seen[name] = partitions_written(context, asset.key, HOURLY)
            seen[f"{name} asked as daily"] = partitions_written(context, asset.key, DAILY)
            yield dg.AssetCheckResult(asset_key=asset.key, check_name="recorded",
                                      passed=not (blocking and fail_a["now"]))
        return check

    checks = [recording(a, blocking=True), recording(b, blocking=False)]
    resources = {"io_manager": _NoStore()}
    hours = ["2021-05-14-20:00", "2021-05-14-21:00", "2021-05-14-22:00"]
    with dg.instance_for_test() as instance:
        dg.materialize([a, b, *checks], instance=instance, resources=resources, tags=range_tags(*OLDER))
        assert seen == {"a": hours, "a asked as daily": hours, "b": hours, "b asked as daily": hours}

        seen.clear()
        dg.materialize([a, b, *checks], selection=dg.AssetSelection.checks(*checks), instance=instance,
                       resources=resources, tags=range_tags(*OLDER))
        assert seen == {"a": [], "a asked as daily": [], "b": [], "b asked as daily": []}

        seen.clear()
        fail_a["now"] = True
        result = dg.materialize([a, b, *checks], instance=instance, resources=resources,
                                tags=range_tags(*OLDER), raise_on_error=False)
        assert not result.success and seen == {"a": hours, "a asked as daily": hours}
        assert {m.materialization.asset_key for m in result.get_asset_materialization_events()} == {a.key}
