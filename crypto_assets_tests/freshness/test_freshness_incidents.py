"""Freshness states and the incidents of the system this replaces, replayed.

Time is controlled with Dagster's `freeze_time` (event timestamps and the clock that freshness
evaluation reads): no sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.definitions.freshness_evaluator import TimeWindowFreshnessPolicyEvaluator
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time

from crypto_assets.freshness import DataFreshness, evaluate
from crypto_assets.loading import load
from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

T0 = datetime(2021, 5, 15, 1, 30, tzinfo=timezone.utc)


def policy_state(graph: ProjectGraph, instance, name: str) -> str:
    """Dagster's own FreshnessPolicy rule: time since the last materialization of ANY partition."""
    node = graph.defs.resolve_asset_graph().get(dg.AssetKey(name))
    state = asyncio.run(TimeWindowFreshnessPolicyEvaluator().evaluate_freshness(LoadingContextForTest(instance), node))
    return state.value


def data_state(graph: ProjectGraph, sqlite_url: str, name: str, now: datetime) -> DataFreshness:
    """The project's rule: the newest DATA against the same policy."""
    node = graph.defs.resolve_asset_graph().get(dg.AssetKey(name))
    return evaluate(get_warehouse(sqlite_url), name, node.freshness_policy, now)


def check_result(result, asset: str, check: str):
    (evaluation,) = [e for e in result.get_asset_check_evaluations()
                     if e.asset_key.to_user_string() == asset and e.check_name == check]
    return evaluation


def run_checks(graph: ProjectGraph, instance, asset: str):
    """Execute the asset's checks alone (a checks-only run, as from the UI)."""
    checks = [c for c in graph.checks if any(k.asset_key == dg.AssetKey(asset) for k in c.check_keys)]
    return dg.materialize([*graph.assets, *checks], selection=dg.AssetSelection.checks(*checks),
                          instance=instance, resources=graph.resources, raise_on_error=False)


@pytest.fixture
def graph(sqlite_url):
    get_warehouse.cache_clear()
    return ProjectGraph(sqlite_url)


def test_data_time_states_fresh_warn_fail(graph, sqlite_url):
    with dg.instance_for_test() as instance:
        with freeze_time(T0):
            graph.materialize(instance, ["coin_universe"])
            graph.materialize(instance, ["price_observations"], partition="2021-05-15-00:00")
        newest = data_state(graph, sqlite_url, "price_observations", T0).data_time
        assert newest.replace(minute=0, second=0, microsecond=0) == datetime(2021, 5, 15, 0, tzinfo=timezone.utc)
        for lag, expected in ((timedelta(minutes=30), "PASS"), (timedelta(hours=2, minutes=5), "WARN"),
                              (timedelta(hours=4, minutes=5), "FAIL")):
            state = data_state(graph, sqlite_url, "price_observations", newest + lag)
            assert state.state == expected and state.lag == lag, lag


def test_incident_source_stops_for_13_hours_then_one_backfill_heals(graph, sqlite_url):
    with dg.instance_for_test() as instance:
        with freeze_time(T0):
            graph.materialize(instance, ["coin_universe"])
            graph.materialize(instance, ["price_observations"], range_=("2021-05-14-15:00", "2021-05-15-00:00"))
        # The source stops. Freshness goes WARN after 2 h and FAIL after 4 h without new data.
        assert data_state(graph, sqlite_url, "price_observations", T0 + timedelta(hours=2, minutes=1)).state == "WARN"
        stopped = T0 + timedelta(hours=13)
        with freeze_time(stopped):
            assert data_state(graph, sqlite_url, "price_observations", stopped).state == "FAIL"
            # A backfill of an old hour, run now: Dagster's own rule reads it as fresh...
            graph.materialize(instance, ["price_observations"], partition="2021-05-14-16:00")
            assert policy_state(graph, instance, "price_observations") == "PASS"
            # ...the data-time rule (what the UI, alerts and health show) does not.
            stale = data_state(graph, sqlite_url, "price_observations", stopped)
            assert stale.state == "FAIL" and stale.lag > timedelta(hours=12)
            # One backfill over the gap heals it, with no duplicates.
            graph.materialize(instance, ["price_observations"], range_=("2021-05-15-01:00", "2021-05-15-14:00"))
            assert data_state(graph, sqlite_url, "price_observations", stopped).state == "PASS"
        prices = load("price_observations", warehouse_url=sqlite_url)
        assert not prices.duplicated(["symbol", "observed_at"]).any()
        assert prices.observed_at.dt.floor("h").nunique() == 24  # 14 May 15:00 .. 15 May 14:00


def test_incident_downstream_stops_advancing_while_upstream_is_fresh(graph, sqlite_url):
    with dg.instance_for_test() as instance:
        with freeze_time(T0):
            graph.materialize(instance, ["coin_universe"])
            graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"],
                              partition="2021-05-15-00:00")
        # Upstream keeps landing; the indicator updater is stuck.
        for hour in range(1, 6):
            with freeze_time(T0 + timedelta(hours=hour)):
                graph.materialize(instance, ["price_observations", "ohlcv_bars"], partition=f"2021-05-15-{hour:02d}:00")
        now = datetime(2021, 5, 15, 6, 0, tzinfo=timezone.utc)
        assert data_state(graph, sqlite_url, "price_observations", now).state == "PASS"
        assert data_state(graph, sqlite_url, "ohlcv_bars", now).state == "PASS"
        stuck = data_state(graph, sqlite_url, "technical_indicators", now)
        assert stuck.state == "FAIL" and stuck.data_time <= datetime(2021, 5, 15, 1, tzinfo=timezone.utc)


def test_incident_renamed_column_blocks_downstream_naming_it(graph, sqlite_url):
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars"], partition="2021-05-15-10:00")
        with get_warehouse(sqlite_url).engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE ohlcv_bars RENAME COLUMN close TO close_price")
        get_warehouse.cache_clear()
        # The blocking schema check names the column...
        schema = check_result(run_checks(graph, instance, "ohlcv_bars"), "ohlcv_bars", "schema_matches_code")
        assert not schema.passed and schema.metadata["missing_columns"].value == ["close"]
        # ...and a run of the next hour stops at ohlcv_bars: indicators are not materialized.
        result = graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"],
                                   partition="2021-05-15-11:00", raise_on_error=False)
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        assert any("missing columns: close" in e.step_failure_data.error.to_string() for e in failures)
        assert "2021-05-15-11:00" not in instance.get_materialized_partitions(dg.AssetKey("technical_indicators"))
        assert "2021-05-15-11:00" not in instance.get_materialized_partitions(dg.AssetKey("ohlcv_bars"))
