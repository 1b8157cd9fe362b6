"""A run's checks and metadata are about exactly the partitions that run wrote."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.loading import load
from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

RANGE = ("2021-05-14-20:00", "2021-05-15-01:00")  # six hours of recorded BTC prices


@pytest.fixture
def graph(sqlite_url):
    get_warehouse.cache_clear()
    return ProjectGraph(sqlite_url)


def evaluations(result, asset: str) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == asset}


def test_checks_of_a_ranged_backfill_judge_the_backfilled_range(graph):
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        # The open hour exists and is empty (replay has no recording of today): it is the NEWEST
        # partition, and it must not be what the backfill's checks look at.
        today = dg.HourlyPartitionsDefinition(start_date="2021-04-01-00:00", end_offset=1).get_last_partition_key()
        graph.materialize(instance, ["price_observations"], partition=today)
        result = graph.materialize(instance, ["price_observations", "ohlcv_bars"], range_=RANGE)
        for asset in ("price_observations", "ohlcv_bars"):
            checks = evaluations(result, asset)
            assert checks["has_rows"].passed, asset
            # BTC is the one recorded coin: present in the range (the empty open hour has none).
            assert checks["symbol_coverage"].metadata["symbols_present"].value == 1, asset
            window = checks["has_rows"].metadata["window"].value
            assert window.startswith(f"{RANGE[0]}...{RANGE[1]} (6 partitions)"), window
            assert "2021-05-14T20:00:00+00:00" in window and "2021-05-15T02:00:00+00:00" in window


def test_a_checks_only_run_judges_the_partition_of_the_newest_data(graph):
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations"], range_=RANGE)
        checks = [c for c in graph.checks if any(k.asset_key == dg.AssetKey("price_observations") for k in c.check_keys)]
        result = dg.materialize([*graph.assets, *checks], selection=dg.AssetSelection.checks(*checks),
                                instance=instance, resources=graph.resources)
        window = evaluations(result, "price_observations")["has_rows"].metadata["window"].value
        assert window.startswith(f"{RANGE[1]} (newest data)"), window


def test_each_partition_of_a_ranged_run_carries_its_own_row_count(graph, sqlite_url):
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        result = graph.materialize(instance, ["price_observations"], range_=RANGE)
        events = result.asset_materializations_for_node("price_observations")
        assert len(events) == 6
        stored = load("price_observations", start="2021-05-14 20:00", end="2021-05-15 02:00", warehouse_url=sqlite_url)
        per_hour = stored.observed_at.dt.floor("h").value_counts()
        for event in events:
            hour = pd.Timestamp(datetime.strptime(event.partition, "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc))
            assert event.metadata["dagster/row_count"].value == per_hour[hour], event.partition
            assert event.metadata["partition"].value == event.partition
            assert event.metadata["run_rows_written"].value == len(stored)
        assert sum(e.metadata["dagster/row_count"].value for e in events) == len(stored)
