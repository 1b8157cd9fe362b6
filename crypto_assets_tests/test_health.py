"""Health score, bands, the platform_health asset and the `crypto-assets health` command."""

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from crypto_assets.health import band, datasets_in, health_report, main
from crypto_assets_tests import ops_defs

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
DATASETS = datasets_in(ops_defs.defs.resolve_asset_graph())
ALL = [ops_defs.prices, ops_defs.news, ops_defs.features]


@pytest.fixture
def instance():
    return dg.DagsterInstance.ephemeral()  # in-memory: 0.1 s instead of 0.5 s for a SQLite one


@pytest.fixture
def home_instance():
    """A SQLite instance under a temporary DAGSTER_HOME, as the CLI reads it."""
    with dg.instance_for_test() as inst:
        yield inst


def materialize(instance, at, assets=ALL, passed=True, severity="ERROR"):
    config = ops_defs.check_config(passed, severity) if ops_defs.prices in assets else None
    with freeze_time(at):
        dg.materialize(assets, instance=instance, run_config=config)


def by_asset(report):
    return {d.asset: d for d in report.datasets}


@pytest.mark.parametrize("score,expected", [(100, "ok"), (95, "ok"), (94.9, "info"), (80, "info"),
                                             (79.9, "warning"), (60, "warning"), (59.9, "critical"), (0, "critical")])
def test_bands(score, expected):
    assert band(score) == expected


def test_datasets_come_from_the_code_location_without_the_health_asset():
    assert [d.name for d in DATASETS] == ["features", "news", "prices"]
    prices = next(d for d in DATASETS if d.name == "prices")
    assert [k.name for k in prices.check_keys] == ["non_empty"]
    assert prices.freshness_policy is not None


def test_every_dataset_counts_and_failures_lower_the_average(instance):
    empty = health_report(instance, DATASETS, now=T0)
    assert empty.score == 0 and empty.band == "critical"  # never materialized = failed, not skipped
    assert {d.freshness for d in empty.datasets} == {"UNKNOWN"}
    assert by_asset(empty)["prices"].never_run_checks == ("non_empty",)

    materialize(instance, T0, assets=[ops_defs.prices, ops_defs.news])
    partial = health_report(instance, DATASETS, now=T0 + timedelta(minutes=30))
    assert [by_asset(partial)[n].score for n in ("features", "news", "prices")] == [0, 100, 100]
    assert partial.score == pytest.approx(66.7) and partial.band == "warning"  # features still counts

    materialize(instance, T0, assets=[ops_defs.features])
    healthy = health_report(instance, DATASETS, now=T0 + timedelta(minutes=30))
    assert healthy.score == 100 and healthy.band == "ok"

    materialize(instance, T0 + timedelta(minutes=40), passed=False, severity="WARN")
    warned = health_report(instance, DATASETS, now=T0 + timedelta(minutes=45))
    assert by_asset(warned)["prices"].score == 75  # (100 freshness + 50 for a WARN failure) / 2
    assert by_asset(warned)["prices"].failing_checks == ("non_empty (WARN)",)
    materialize(instance, T0 + timedelta(minutes=50), passed=False)
    failed = health_report(instance, DATASETS, now=T0 + timedelta(minutes=55))
    assert by_asset(failed)["prices"].score == 50 and failed.score == pytest.approx(83.3) and failed.band == "info"
    assert "non_empty (ERROR)" in failed.to_markdown()


def test_staleness_counts_even_when_no_daemon_ever_ran(instance):
    materialize(instance, T0)
    late = by_asset(health_report(instance, DATASETS, now=T0 + timedelta(hours=3)))
    assert (late["news"].freshness, late["news"].freshness_source, late["news"].score) == ("WARN", "policy", 50)
    stale = health_report(instance, DATASETS, now=T0 + timedelta(hours=5))
    assert by_asset(stale)["news"].score == 0 and by_asset(stale)["prices"].score == 50
    assert by_asset(stale)["features"].score == 100  # no policy: materialized is enough
    assert by_asset(stale)["news"].age == timedelta(hours=5)


def test_a_stopped_daemon_cannot_hide_staleness(home_instance):
    instance = home_instance  # the daemon's workspace needs a persistent instance
    materialize(instance, T0)
    target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=ops_defs.__file__, attribute="defs"), location_name="ops_test"))
    with create_test_daemon_workspace_context(target, instance) as workspace, freeze_time(T0 + timedelta(minutes=1)):
        list(FreshnessDaemon().run_iteration(workspace))  # records PASS, then the daemon "stops"
    report = by_asset(health_report(instance, DATASETS, now=T0 + timedelta(minutes=2)))
    assert (report["news"].freshness, report["news"].freshness_source) == ("PASS", "daemon")
    report = by_asset(health_report(instance, DATASETS, now=T0 + timedelta(hours=6)))
    assert (report["news"].freshness, report["news"].freshness_source) == ("FAIL", "policy")


def test_last_partition_is_the_newest_even_after_an_old_backfill(instance):
    hourly = dg.HourlyPartitionsDefinition(start_date="2021-05-01-00:00", timezone="UTC")

    @dg.asset(partitions_def=hourly)
    def bars() -> None:
        return None

    for key in ("2021-05-15-10:00", "2021-05-02-03:00"):  # the backfill lands last
        dg.materialize([bars], instance=instance, partition_key=key)
    (row,) = health_report(instance, ["bars"]).datasets
    assert row.last_partition == "2021-05-15-10:00"
    assert row.freshness == "NOT_APPLICABLE" and row.score == 100


def test_platform_health_asset_shows_score_and_table(home_instance):
    instance = home_instance  # execute_job needs a persistent instance
    materialize(instance, datetime.now(timezone.utc), assets=[ops_defs.prices, ops_defs.news])
    # As the schedule launches it: a job of the code location, which scores that location's datasets.
    job = ReconstructableRepository.for_file(ops_defs.__file__, "defs").get_reconstructable_job("platform_health_job")
    result = dg.execute_job(job, instance=instance, run_config={"execution": {"config": {"in_process": {}}}})
    assert result.success
    meta = result.asset_materializations_for_node("platform_health")[0].metadata
    assert meta["score"].value == pytest.approx(66.7) and meta["band"].value == "warning"
    table = meta["table"].value
    assert "| features | 0 | critical | UNKNOWN | - | never materialized |" in table
    assert "platform_health" not in table.split("\n", 1)[1]  # the health asset is not a dataset


def test_platform_health_in_process_scores_the_project_definitions(instance):
    from crypto_assets.health import platform_health

    result = dg.materialize([platform_health], instance=instance)  # no code location: e.g. `make demo`
    table = result.asset_materializations_for_node("platform_health")[0].metadata["table"].value
    assert "| price_observations |" in table and "| technical_indicators |" in table


def test_cli_exit_code_follows_the_critical_band(home_instance, capsys):
    instance = home_instance
    args = ["--definitions", "crypto_assets_tests.ops_defs:defs"]
    assert main(args) == 1  # nothing built yet: score 0
    assert "never materialized" in capsys.readouterr().out
    materialize(instance, datetime.now(timezone.utc))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Health 100.0 / 100 (ok)") and "prices" in out
    assert main([*args, "--fail-below", "101"]) == 1
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["score"] == 100 and [d["asset"] for d in report["datasets"]] == ["features", "news", "prices"]


def test_cli_without_dagster_home_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main([]) == 2
    assert "DAGSTER_HOME is not set" in capsys.readouterr().err
