"""Dagster instance storage on a real MySQL/MariaDB server (runs when CRYPTO_TEST_MYSQL_URL is set).

Each test gets its own throw-away database `crypto_instance_test_<random>` on that server,
dropped afterwards. The instance is loaded from deploy/dagster.mysql.yaml with the server's
coordinates in DAGSTER_MYSQL_* (an empty password stays empty). Small inline assets keep
these tests independent of the project's graph.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.test_utils import freeze_time
from dagster._time import get_current_datetime

from crypto_assets.deploy import mysql_instance
from crypto_assets.freshness import DataFreshness, state_for
from crypto_assets.freshness.sensor import publish_states
from crypto_assets.deploy.mysql_instance import BODY_COLUMNS, widen_mysql_instance_columns
from crypto_assets.paths import PROJECT_ROOT
from crypto_assets.sources.catalog import source_specs
from crypto_assets.warehouse.scratch import scratch_database

TEST_URL = os.environ.get("CRYPTO_TEST_MYSQL_URL")
pytestmark = pytest.mark.skipif(not TEST_URL, reason="CRYPTO_TEST_MYSQL_URL is not set")

BIG = "x" * 70_000  # > 65,535 bytes: overflows TEXT/BLOB


@contextmanager
def throwaway_database() -> Iterator[sa.URL]:
    with scratch_database(TEST_URL, "crypto_instance_test") as url:
        yield url


def k8s_instance_yaml() -> str:
    return yaml.safe_load((PROJECT_ROOT / "k8s" / "dagster-instance.yaml").read_text())["data"]["dagster.yaml"]


@contextmanager
def instance_on(db_url: sa.URL, tmp_path, instance_yaml: str | None = None) -> Iterator[dg.DagsterInstance]:
    """An instance loaded from deploy/dagster.mysql.yaml (or `instance_yaml`), pointed at
    `db_url` through the DAGSTER_MYSQL_* variables."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    if instance_yaml is None:
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.mysql.yaml", home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(instance_yaml)
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_MYSQL_HOST": db_url.host or "127.0.0.1",
        "DAGSTER_MYSQL_PORT": str(db_url.port or 3306),
        "DAGSTER_MYSQL_USER": db_url.username or "root",
        "DAGSTER_MYSQL_PASSWORD": db_url.password or "",
        "DAGSTER_MYSQL_DB": db_url.database,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            yield instance
        finally:
            instance.dispose()


def column_types(db_url: sa.URL) -> dict[str, tuple[str, str]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE()"
            )
        ).fetchall()
    engine.dispose()
    return {f"{t}.{c}": (str(d).lower(), n) for t, c, d, n in rows}


# --- small inline graph ------------------------------------------------------------------

HOURS = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC")
CHECK = dg.AssetCheckKey(dg.AssetKey("hourly_rows"), "has_rows")


@dg.asset(
    partitions_def=HOURS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("has_rows", asset="hourly_rows")],
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=4), warn_window=timedelta(hours=2)),
    pool="coingecko",
)
def hourly_rows(context) -> dg.MaterializeResult:
    rows = 10 * len(context.partition_keys)
    return dg.MaterializeResult(
        metadata={"rows": rows, "partitions": len(context.partition_keys)},
        check_results=[dg.AssetCheckResult(check_name="has_rows", passed=rows > 0, metadata={"rows": rows})],
    )


def record_freshness(instance: dg.DagsterInstance, lag: timedelta, now) -> FreshnessState:
    """What data_freshness_sensor does for `hourly_rows` when its newest data is `lag` old: record the
    state (2 h warn / 4 h fail), then read it back from the instance's storage."""
    state = state_for(lag, timedelta(hours=2), timedelta(hours=4))
    with freeze_time(now):
        publish_states(instance, {hourly_rows.key: DataFreshness("hourly_rows", state, now - lag, lag,
                                                                 timedelta(hours=2), timedelta(hours=4))}, now)
    return instance.get_freshness_state_records([hourly_rows.key])[hourly_rows.key].freshness_state


# --- tests -------------------------------------------------------------------------------


@pytest.mark.slow
def test_instance_runs_partitions_backfill_checks_and_freshness_on_mysql(tmp_path):
    with throwaway_database() as db_url, instance_on(db_url, tmp_path) as instance:
        # The yaml's env sources reached dagster-mysql unchanged, empty password included.
        assert instance.run_storage.mysql_url.endswith(f"@{db_url.host}:{db_url.port or 3306}/{db_url.database}")
        # Dagster's freshness daemon is off: data_freshness_sensor records the states.
        assert instance.get_settings("freshness") == {"enabled": False}

        single = dg.materialize([hourly_rows], instance=instance, partition_key="2026-01-02-05:00")
        assert single.success
        backfill = dg.materialize(
            [hourly_rows],
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "2026-01-01-00:00",
                "dagster/asset_partition_range_end": "2026-01-01-05:00",
            },
        )
        assert backfill.success

        # Read everything back from MySQL.
        ranged_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/asset_partition_range_start": "2026-01-01-00:00"}))
        assert [r.run_id for r in ranged_runs] == [backfill.run_id]  # one run for the whole range
        assert ranged_runs[0].status == dg.DagsterRunStatus.SUCCESS
        expected = {f"2026-01-01-0{h}:00" for h in range(6)} | {"2026-01-02-05:00"}
        assert instance.get_materialized_partitions(hourly_rows.key) == expected
        records = instance.fetch_materializations(hourly_rows.key, limit=50).records
        assert len(records) == 7

        checks = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=20)
        # One evaluation per run (in-asset results carry no partition in 1.13; the per-partition
        # PLANNED rows that dagster also writes stay PLANNED, on SQLite too).
        succeeded = [c for c in checks if c.status.value == "SUCCEEDED"]
        assert {c.run_id for c in succeeded} == {single.run_id, backfill.run_id} and len(succeeded) == 2
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK])[CHECK]
        assert (latest.run_id, latest.status.value) == (backfill.run_id, "SUCCEEDED")
        assert latest.event.dagster_event.event_specific_data.metadata["rows"].value == 60

        now = get_current_datetime()
        assert record_freshness(instance, timedelta(minutes=10), now) == FreshnessState.PASS
        assert record_freshness(instance, timedelta(hours=3), now + timedelta(hours=3)) == FreshnessState.WARN
        assert record_freshness(instance, timedelta(hours=5), now + timedelta(hours=5)) == FreshnessState.FAIL
        # The state record persisted in MySQL, as the UI and the alert sensor read it.
        record = instance.get_freshness_state_records([hourly_rows.key])[hourly_rows.key]
        assert record.freshness_state == FreshnessState.FAIL
        assert record.updated_at.timestamp() >= (now + timedelta(hours=5)).timestamp() - 1


@pytest.mark.slow
def test_source_pools_default_to_one_slot_and_explicit_limits_win_on_mysql(tmp_path):
    pools = sorted({spec.pool for spec in source_specs().values() if spec.pool})
    assert "coingecko" in pools
    with throwaway_database() as db_url, instance_on(db_url, tmp_path) as instance:
        storage = instance.event_log_storage
        for pool in pools:  # what the run worker does the first time a step claims the pool
            storage.initialize_concurrency_limit_to_default(pool)
            info = storage.get_concurrency_info(pool)
            assert (info.slot_count, info.using_default_limit) == (1, True), pool
        # `dagster instance concurrency set coingecko 2` is this call. The limit is then no
        # longer a default one, so run workers stop re-applying `default_limit` to it.
        storage.set_concurrency_slots("coingecko", 2)
        info = storage.get_concurrency_info("coingecko")
        assert (info.slot_count, info.using_default_limit) == (2, False)


@pytest.mark.slow
def test_widening_makes_big_bodies_fit_and_is_idempotent(tmp_path, capsys):
    with throwaway_database() as db_url, instance_on(db_url, tmp_path) as instance:
        url = db_url.render_as_string(hide_password=False)
        names = [f"{c.table}.{c.column}" for c in BODY_COLUMNS]

        # As dagster-mysql creates them: 64 KB TEXT/BLOB (fails when upstream widens them).
        before = column_types(db_url)
        assert {n: before[n][0] for n in names} == {n: ("blob" if n == "snapshots.snapshot_body" else "text") for n in names}
        assert mysql_instance.main(["--url", url, "--check"]) == 1

        # Before widening, > 64 KB writes fail, and leave nothing behind.
        with pytest.raises(sa.exc.DataError, match="Data too long"):
            instance.run_storage.set_cursor_values({"big_cursor": BIG})
        assert instance.run_storage.get_cursor_values({"big_cursor"}) == {}
        run_id = str(uuid.uuid4())
        with pytest.raises(sa.exc.DataError, match="Data too long"):
            instance.add_run(DagsterRun(job_name="big_job", run_id=run_id, tags={"big": BIG}))
        assert instance.get_run_by_id(run_id) is None

        # Widen the instance of $DAGSTER_HOME, as `crypto-assets instance widen-mysql` does.
        assert mysql_instance.main([]) == 0
        assert "widened: runs.run_body" in capsys.readouterr().out
        after = column_types(db_url)
        for n in names:
            assert after[n][0] == ("longblob" if n == "snapshots.snapshot_body" else "longtext"), n
            assert after[n][1] == before[n][1], f"{n}: nullability changed"

        instance.run_storage.set_cursor_values({"big_cursor": BIG})
        assert instance.run_storage.get_cursor_values({"big_cursor"}) == {"big_cursor": BIG}
        instance.add_run(DagsterRun(job_name="big_job", run_id=run_id, tags={"big": BIG}))
        assert instance.get_run_by_id(run_id).tags["big"] == BIG

        # Idempotent, and `dagster instance migrate` keeps the wide types.
        again = widen_mysql_instance_columns(url)
        assert again.widened == [] and sorted(again.already_wide) == sorted(names)
        instance.upgrade()
        assert all(column_types(db_url)[n][0].startswith("long") for n in names)
        assert mysql_instance.main(["--url", url, "--check"]) == 0


@pytest.mark.slow
def test_kubernetes_instance_config_migrates_and_widens_on_mysql(tmp_path):
    # What k8s/job-widen-mysql.yaml runs (`dagster instance migrate` + widen), with the
    # Kubernetes dagster.yaml; the K8sRunLauncher is only built when a run is launched.
    with throwaway_database() as db_url, instance_on(db_url, tmp_path, k8s_instance_yaml()) as instance:
        instance.upgrade()
        assert mysql_instance.main([]) == 0
        assert mysql_instance.narrow_columns(db_url.render_as_string(hide_password=False)) == []
        assert instance.get_settings("freshness") == {"enabled": False}
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_ref().run_launcher_data.class_name == "K8sRunLauncher"
