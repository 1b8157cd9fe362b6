"""End to end with the real Dagster daemon, webserver and code server (`dg dev`, as `make dev`).

Replay mode, default schedules and sensors, no Reddit credentials. The live price cron is
shortened to every minute and the automation sensor ticks every 10 s (both are settings of the
code location), so one live hour's chain completes within minutes. Asserted on what the daemon
launched: the whole chain of the open hour materializes by itself, features after the
indicators of their hour, sentiment from news alone, each dataset's checks in the same run, and
the freshness the UI shows is about data, not runs.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from crypto_assets.partitions import HOURLY
from crypto_assets_tests.live_stack import live_stack
from crypto_assets_tests.waiting import wait_until

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

CHAIN = ("price_observations", "ohlcv_bars", "technical_indicators", "ml_features", "sentiment_scores")
TIMEOUT_S = 420

LAUNCH_BACKFILL = """
mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
FRESHNESS = """{ assetNodes { assetKey { path } freshnessStatusInfo { freshnessStatus } } }"""


def open_hours() -> set[str]:
    """The open hour now and the next one (the test may cross an hour boundary)."""
    now = datetime.now(timezone.utc).timestamp()
    return {HOURLY.get_partition_key_for_timestamp(now), HOURLY.get_partition_key_for_timestamp(now + 3600)}


def materialization(instance, name: str, partition: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[partition]), limit=1).records
    return records[0] if records else None


def done_hour(instance, hours: set[str]) -> str | None:
    for hour in sorted(hours):
        if all(materialization(instance, name, hour) for name in CHAIN):
            return hour
    return None


def test_the_daemon_keeps_the_open_hour_current_by_itself(tmp_path, monkeypatch):
    env = {"CRYPTO_LIVE_CRON": "* * * * *", "CRYPTO_AUTOMATION_INTERVAL_SECONDS": "10"}
    with live_stack(tmp_path, env) as stack:
        monkeypatch.setenv("DAGSTER_HOME", str(stack.home))
        hours = open_hours()
        # News of the open hour, launched as a user does from the UI (its own schedule runs every
        # 10 minutes). Replay has no article for today: the partition lands empty, which is a result.
        launched = stack.graphql(LAUNCH_BACKFILL, {"p": {
            "partitionNames": [min(hours)], "assetSelection": [{"path": ["news_articles"]}]}})
        assert launched["data"]["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched

        with dg.DagsterInstance.get() as instance:
            hour = wait_until(lambda: done_hour(instance, hours), TIMEOUT_S, "the open hour's whole chain",
                              alive=stack.stopped, every_s=1)

            # Reddit is not configured: social_posts never ran, and blocked nothing.
            assert not instance.get_materialized_partitions(dg.AssetKey("social_posts"))
            by_name = {name: materialization(instance, name, hour) for name in CHAIN}
            # Features after the indicators of their hour (they used to race and lose).
            assert by_name["ml_features"].storage_id > by_name["technical_indicators"].storage_id
            for name in ("ohlcv_bars", "technical_indicators", "ml_features", "sentiment_scores"):
                run = instance.get_run_by_id(by_name[name].run_id)
                assert run.tags.get("dagster/from_automation_condition") == "true", (name, run.tags)
                # Labelled for a person reading the Runs list (runs and backfills alike).
                assert run.tags.get("crypto/started_by", "").startswith("automation"), (name, run.tags)
                assert run.job_name == "__ASSET_JOB" or run.tags.get("dagster/sensor_name") == "automation"
            for backfill in instance.get_backfills():
                if backfill.tags.get("dagster/from_automation_condition") == "true" or "dagster/sensor_name" in (
                        backfill.tags or {}):
                    assert backfill.tags.get("crypto/started_by", "").startswith("automation"), backfill.tags
            # The bars' checks ran in the automation run that wrote the bars.
            check_events = instance.get_records_for_run(
                run_id=by_name["ohlcv_bars"].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
            checked = {r.event_log_entry.dagster_event.event_specific_data.asset_key.to_user_string() for r in check_events}
            assert "ohlcv_bars" in checked

            # Runs landed minutes ago, but none brought a row for today (replay): the freshness the
            # UI shows must not say healthy. It is recorded by data_freshness_sensor (60 s ticks).
            records = wait_until(lambda: instance.get_freshness_state_records([dg.AssetKey("price_observations")]),
                                 90, "a freshness state recorded by data_freshness_sensor", alive=stack.stopped)
            assert records[dg.AssetKey("price_observations")].freshness_state.value == "UNKNOWN"
        shown = {tuple(n["assetKey"]["path"]): (n["freshnessStatusInfo"] or {}).get("freshnessStatus")
                 for n in stack.graphql(FRESHNESS)["data"]["assetNodes"]}
        assert shown[("price_observations",)] not in ("HEALTHY", None)
        # `dg dev` itself started without warnings about its CLI or a stray dagster.yaml.
        log = stack.log()
        assert "SupersessionWarning" not in log and "Found a dagster instance configuration" not in log


def test_a_backfill_from_the_ui_runs_in_chunks_of_the_configured_size(tmp_path, monkeypatch):
    """A 10-hour backfill launched as the UI does, with CRYPTO_BACKFILL_HOURS_PER_RUN=4: the daemon
    splits it into runs of at most 4 partitions (4, 4, 2) that together cover every partition once,
    and every partition is materialized. (Each run replaces only its own window, so one failed
    chunk is re-run alone.)"""
    first = datetime(2024, 1, 1, tzinfo=timezone.utc)
    partitions = [HOURLY.get_partition_key_for_timestamp(first.timestamp() + 3600 * h) for h in range(10)]
    with live_stack(tmp_path, {"CRYPTO_BACKFILL_HOURS_PER_RUN": "4"}) as stack:
        monkeypatch.setenv("DAGSTER_HOME", str(stack.home))
        launched = stack.graphql(LAUNCH_BACKFILL, {"p": {
            "partitionNames": partitions, "assetSelection": [{"path": ["technical_indicators"]}]}})
        result = launched["data"]["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", launched
        with dg.DagsterInstance.get() as instance:
            runs_filter = dg.RunsFilter(tags={"dagster/backfill": result["backfillId"]})

            def finished_runs():
                runs = instance.get_runs(runs_filter)
                return runs if len(runs) >= 3 and all(r.is_finished for r in runs) else None

            runs = wait_until(finished_runs, 300, "the backfill's runs", alive=stack.stopped, every_s=1)
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [r.status for r in runs]
            covered = []
            for run in runs:
                lo = run.tags["dagster/asset_partition_range_start"]
                hi = run.tags["dagster/asset_partition_range_end"]
                chunk = partitions[partitions.index(lo): partitions.index(hi) + 1]
                assert 1 <= len(chunk) <= 4, (lo, hi)
                covered += chunk
            assert sorted(covered) == partitions and len(runs) == 3  # 4 + 4 + 2, each partition once
            done = instance.get_materialized_partitions(dg.AssetKey("technical_indicators"))
            assert set(partitions) <= done
