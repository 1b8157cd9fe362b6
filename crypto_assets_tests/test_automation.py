"""Declarative automation: raw partitions lead to exactly the matching downstream requests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg

from crypto_assets_tests.graph_helpers import ProjectGraph

NOW = datetime(2021, 5, 15, 14, 30, tzinfo=timezone.utc)
LATEST = "2021-05-15-14:00"  # the open hour at NOW (hourly partitions include the current hour)


def requested(result, name):
    return result.get_requested_partitions(dg.AssetKey(name))


def test_raw_partition_requests_exactly_the_matching_downstream(sqlite_url):
    graph = ProjectGraph(sqlite_url)
    with dg.instance_for_test() as instance:
        tick0 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, evaluation_time=NOW)
        assert tick0.total_requested == 0  # the priming tick requests nothing
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations"], partition=LATEST)
        tick1 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, cursor=tick0.cursor,
                                                  evaluation_time=NOW + timedelta(minutes=1))
        assert requested(tick1, "ohlcv_bars") == {LATEST}
        # Indicators read 600 hours of lookback, but only their own hour's parent must exist.
        assert requested(tick1, "technical_indicators") == {LATEST}
        # Sentiment's parents (news, social) are missing: nothing requested.
        assert requested(tick1, "sentiment_scores") == set()
        # The live prices run once per 5-minute cron tick, for the current partition only.
        assert requested(tick1, "price_observations") == set()
        tick2 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, cursor=tick1.cursor,
                                                  evaluation_time=NOW + timedelta(minutes=6))
        assert requested(tick2, "price_observations") == {LATEST}
        assert requested(tick2, "ohlcv_bars") == set()  # already requested once


def test_nothing_is_requested_while_a_required_parent_is_missing(sqlite_url):
    graph = ProjectGraph(sqlite_url)
    with dg.instance_for_test() as instance:
        tick0 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, evaluation_time=NOW)
        graph.materialize(instance, ["news_articles"], partition=LATEST)  # social_posts still missing
        tick1 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, cursor=tick0.cursor,
                                                  evaluation_time=NOW + timedelta(minutes=1))
        assert requested(tick1, "sentiment_scores") == set()
        graph.materialize(instance, ["social_posts"], partition=LATEST)
        tick2 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, cursor=tick1.cursor,
                                                  evaluation_time=NOW + timedelta(minutes=2))
        assert requested(tick2, "sentiment_scores") == {LATEST}


def test_a_late_raw_partition_flows_downstream(sqlite_url):
    graph = ProjectGraph(sqlite_url)
    late = "2021-05-15-03:00"  # eleven hours old: plain eager() would ignore it
    with dg.instance_for_test() as instance:
        tick0 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, evaluation_time=NOW)
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations"], partition=late)
        tick1 = dg.evaluate_automation_conditions(defs=graph.defs, instance=instance, cursor=tick0.cursor,
                                                  evaluation_time=NOW + timedelta(minutes=1))
        # The late hour flows down; the open hour too, since its live prices are requested in
        # the same tick (coin_universe landed after the priming tick, so the cron tick is due).
        assert requested(tick1, "price_observations") == {LATEST}
        assert requested(tick1, "ohlcv_bars") == {late, LATEST}
        assert requested(tick1, "technical_indicators") == {late, LATEST}


def test_every_automated_group_has_a_running_sensor():
    from crypto_assets.definitions import defs

    sensors = {s.name: s for s in defs.sensors}
    for group in ("ingest", "enrich", "features"):
        assert sensors[f"automation_{group}"].default_status == dg.DefaultSensorStatus.RUNNING
