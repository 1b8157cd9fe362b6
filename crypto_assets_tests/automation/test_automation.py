"""Declarative automation, rule by rule, with Dagster's own evaluator on the project's graph.

The end-to-end proof with the real daemon is in test_live_daemon.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from crypto_assets_tests.graph_helpers import ProjectGraph

NOW = datetime(2021, 5, 15, 14, 30, tzinfo=timezone.utc)
LATEST = "2021-05-15-14:00"  # the open hour at NOW (hourly partitions include the current hour)


def requested(result, name):
    return result.get_requested_partitions(dg.AssetKey(name))


def requested_assets(result) -> set[str]:
    return {r.key.to_user_string() for r in result.results
            if isinstance(r.key, dg.AssetKey) and r.true_subset.size > 0}


def requested_checks(result) -> set[str]:
    """The datasets whose checks the tick requested."""
    return {r.key.asset_key.to_user_string() for r in result.results
            if isinstance(r.key, dg.AssetCheckKey) and r.true_subset.size > 0}


class Ticks:
    """Successive automation ticks on one instance, as the sensor runs them (cursor carried over)."""

    def __init__(self, graph: ProjectGraph, instance):
        self.graph, self.instance, self.cursor = graph, instance, None

    def tick(self, at: datetime):
        result = dg.evaluate_automation_conditions(defs=self.graph.defs, instance=self.instance,
                                                   cursor=self.cursor, evaluation_time=at)
        self.cursor = result.cursor
        return result


@pytest.fixture
def graph(sqlite_url):
    return ProjectGraph(sqlite_url)


@pytest.mark.slow
def test_live_prices_bring_the_whole_chain_of_the_hour_in_one_tick(graph):
    """Bars, indicators and features of an hour are requested in the SAME tick as its prices (one run,
    in order): features can no longer run before the indicators of their hour."""
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        # A fresh instance: only the missing reference data is requested at once.
        assert requested_assets(ticks.tick(NOW)) == {"coin_universe"}
        graph.materialize(instance, ["coin_universe"])
        tick1 = ticks.tick(NOW + timedelta(minutes=6))  # a 5-minute cron tick has passed
        for name in ("price_observations", "ohlcv_bars", "technical_indicators", "ml_features"):
            assert requested(tick1, name) == {LATEST}, name
        # Sentiment has no input for the hour (no news, no Reddit): nothing to score yet.
        assert requested(tick1, "sentiment_scores") == set()
        # Checks never start runs of their own: they ride along in the runs of their assets
        # (asserted on the real daemon's runs in test_live_daemon.py).
        assert requested_checks(tick1) == set()
        graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators", "ml_features"],
                          partition=LATEST)
        tick2 = ticks.tick(NOW + timedelta(minutes=7))
        assert tick2.total_requested == 0  # handled: nothing twice
        tick3 = ticks.tick(NOW + timedelta(minutes=11))
        assert requested(tick3, "price_observations") == {LATEST}  # the next cron tick


@pytest.mark.slow
def test_news_alone_drives_sentiment_and_features_without_reddit(graph):
    """social_posts is never materialized (no Reddit credentials): it must not block anything."""
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        ticks.tick(NOW)
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"], partition=LATEST)
        graph.materialize(instance, ["news_articles"], partition=LATEST)
        tick1 = ticks.tick(NOW + timedelta(minutes=1))
        assert requested(tick1, "sentiment_scores") == {LATEST}
        # Features need only the hour's bars and indicators: sentiment's 24 h lookback, 62 days of
        # macro and 10 of on-chain are optional inputs (NaN features + dq_* flags), never blockers.
        assert requested(tick1, "ml_features") == {LATEST}


@pytest.mark.slow
def test_sentiment_waits_while_no_text_input_exists(graph):
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        ticks.tick(NOW)
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations"], partition=LATEST)
        assert requested(ticks.tick(NOW + timedelta(minutes=1)), "sentiment_scores") == set()
        graph.materialize(instance, ["news_articles"], partition=LATEST)
        assert requested(ticks.tick(NOW + timedelta(minutes=2)), "sentiment_scores") == {LATEST}


@pytest.mark.slow
def test_nothing_runs_while_its_parent_is_in_progress(graph):
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        ticks.tick(NOW)
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars"], partition=LATEST)
        # A run of the indicators for the hour is queued (not finished): its planned event makes the
        # partition in progress.
        job = graph.defs.resolve_implicit_global_asset_job_def()
        run = instance.create_run_for_job(job_def=job, asset_selection=frozenset({dg.AssetKey("technical_indicators")}),
                                          tags={"dagster/partition": LATEST}, status=dg.DagsterRunStatus.STARTED)
        tick1 = ticks.tick(NOW + timedelta(minutes=1))
        assert requested(tick1, "technical_indicators") == set()  # in progress itself
        assert requested(tick1, "ml_features") == set()  # waits for its in-progress parent
        instance.report_run_failed(run)
        graph.materialize(instance, ["technical_indicators"], partition=LATEST)
        assert requested(ticks.tick(NOW + timedelta(minutes=2)), "ml_features") == {LATEST}


@pytest.mark.slow
def test_a_late_raw_partition_flows_all_the_way_down(graph):
    late = "2021-05-15-03:00"  # eleven hours old: plain eager() would ignore it
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        ticks.tick(NOW)
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations"], partition=late)
        tick1 = ticks.tick(NOW + timedelta(minutes=1))
        for name in ("ohlcv_bars", "technical_indicators", "ml_features"):
            assert late in requested(tick1, name), name


@pytest.mark.slow
def test_a_backfill_of_an_old_range_starts_no_automation(graph):
    """History is the backfill's job: materializing 2021-05-10 does not make automation request
    anything for those hours (48 h window), nor re-request the current hour's chain."""
    old = ("2021-05-10-00:00", "2021-05-10-05:00")
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        ticks.tick(NOW)
        graph.materialize(instance, ["coin_universe"])
        ticks.tick(NOW + timedelta(minutes=1))
        graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators", "news_articles"],
                          range_=old)
        tick = ticks.tick(NOW + timedelta(minutes=2))
        old_keys = {f"2021-05-10-{h:02d}:00" for h in range(6)}
        for name in ("ohlcv_bars", "technical_indicators", "sentiment_scores", "ml_features"):
            assert not requested(tick, name) & old_keys, name


@pytest.mark.slow
def test_missing_reference_data_is_built_by_automation(graph):
    """A fresh deployment has no coin universe; without it no price run could start. It is requested
    on the first tick, not again while it is in progress or after it failed."""
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        assert requested(ticks.tick(NOW), "coin_universe") == {None}
        job = graph.defs.resolve_implicit_global_asset_job_def()
        run = instance.create_run_for_job(job_def=job, asset_selection=frozenset({dg.AssetKey("coin_universe")}),
                                          status=dg.DagsterRunStatus.STARTED)
        assert requested(ticks.tick(NOW + timedelta(minutes=1)), "coin_universe") == set()  # in progress
        instance.report_run_failed(run)
        assert requested(ticks.tick(NOW + timedelta(minutes=2)), "coin_universe") == set()  # failed: no retry loop
        graph.materialize(instance, ["coin_universe"])
        assert requested(ticks.tick(NOW + timedelta(minutes=6)), "price_observations") == {LATEST}


def test_one_running_automation_sensor_covers_every_automated_asset():
    from crypto_assets.definitions import defs

    sensors = [s for s in defs.sensors if isinstance(s, dg.AutomationConditionSensorDefinition)]
    assert len(sensors) == 1
    (sensor,) = sensors
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    automated = {node.key for node in graph.asset_nodes if node.automation_condition is not None}
    targeted = sensor.asset_selection.resolve(graph)
    assert automated and automated <= targeted
