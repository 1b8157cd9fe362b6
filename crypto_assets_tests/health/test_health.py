"""Health score, bands, the platform_health asset and the `crypto-assets health` command."""

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.test_utils import freeze_time

from crypto_assets.freshness.sensor import data_freshness_sensor
from crypto_assets.health import band, datasets_in, health_report, main
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets_tests import ops_defs

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
DATASETS = datasets_in(ops_defs.defs.resolve_asset_graph())
ALL = [ops_defs.prices, ops_defs.news, ops_defs.features]
RESOURCES = {"warehouse": WarehouseResource()}


@pytest.fixture
def instance(configured_warehouse):
    return dg.DagsterInstance.ephemeral()  # in-memory: 0.1 s instead of 0.5 s for a SQLite one


@pytest.fixture
def home_instance(configured_warehouse):
    """A SQLite instance under a temporary DAGSTER_HOME, as the CLI reads it."""
    with dg.instance_for_test() as inst:
        yield inst


def materialize(instance, at, assets=ALL, passed=True, severity="ERROR", data_hours_old=0.0):
    names = [a.key.to_user_string() for a in assets if a.key.to_user_string() != "features"]
    config = ops_defs.run_config(passed, severity, data_hours_old, assets=names)
    with freeze_time(at):
        dg.materialize(assets, instance=instance, run_config=config, resources=RESOURCES)


def by_asset(report):
    return {d.asset: d for d in report.datasets}


@pytest.mark.parametrize("score,expected", [(100, "ok"), (95, "ok"), (94.9, "info"), (80, "info"),
                                             (79.9, "warning"), (60, "warning"), (59.9, "critical"), (0, "critical")])
def test_bands(score, expected):
    assert band(score) == expected


def test_datasets_come_from_the_code_location_without_the_health_asset():
    assert [d.name for d in DATASETS] == ["features", "news_articles", "price_observations"]
    prices = next(d for d in DATASETS if d.name == "price_observations")
    assert [k.name for k in prices.check_keys] == ["non_empty"]
    assert prices.freshness_policy is not None


def test_every_dataset_counts_and_failures_lower_the_average(instance):
    empty = health_report(instance, DATASETS, now=T0)
    assert empty.score == 0 and empty.band == "critical"  # never materialized = failed, not skipped
    assert {d.freshness for d in empty.datasets} == {"UNKNOWN"}
    assert by_asset(empty)["price_observations"].never_run_checks == ("non_empty",)

    materialize(instance, T0, assets=[ops_defs.prices, ops_defs.news])
    partial = health_report(instance, DATASETS, now=T0 + timedelta(minutes=30))
    assert [by_asset(partial)[n].score for n in ("features", "news_articles", "price_observations")] == [0, 100, 100]
    assert partial.score == pytest.approx(66.7) and partial.band == "warning"  # features still counts

    materialize(instance, T0, assets=[ops_defs.features])
    healthy = health_report(instance, DATASETS, now=T0 + timedelta(minutes=30))
    assert healthy.score == 100 and healthy.band == "ok"

    materialize(instance, T0 + timedelta(minutes=40), passed=False, severity="WARN")
    warned = health_report(instance, DATASETS, now=T0 + timedelta(minutes=45))
    assert by_asset(warned)["price_observations"].score == 75  # (100 freshness + 50 for a WARN failure) / 2
    assert by_asset(warned)["price_observations"].failing_checks == ("non_empty (WARN)",)
    materialize(instance, T0 + timedelta(minutes=50), passed=False)
    failed = health_report(instance, DATASETS, now=T0 + timedelta(minutes=55))
    assert by_asset(failed)["price_observations"].score == 50
    assert failed.score == pytest.approx(83.3) and failed.band == "info"
    assert "non_empty (ERROR)" in failed.to_markdown()


def test_staleness_is_measured_on_data_time_even_when_no_sensor_ever_ran(instance):
    materialize(instance, T0)
    late = by_asset(health_report(instance, DATASETS, now=T0 + timedelta(hours=3)))
    assert (late["news_articles"].freshness, late["news_articles"].freshness_source) == ("WARN", "data")
    assert late["news_articles"].score == 50
    stale = health_report(instance, DATASETS, now=T0 + timedelta(hours=5))
    assert by_asset(stale)["news_articles"].score == 0 and by_asset(stale)["price_observations"].score == 50
    assert by_asset(stale)["features"].score == 100  # no policy: materialized is enough
    assert by_asset(stale)["news_articles"].data_age == timedelta(hours=5)


def test_a_run_that_brings_only_old_data_does_not_make_a_dataset_fresh(instance):
    """A backfill of old hours, a replay of 2021 recordings or a live run that lands nothing new
    all MATERIALIZE now; none of them is new data, so none of them reads as fresh."""
    materialize(instance, T0, data_hours_old=0)
    at = T0 + timedelta(hours=6)
    materialize(instance, at, data_hours_old=24 * 365)  # a run right now that wrote a year-old row
    report = by_asset(health_report(instance, DATASETS, now=at + timedelta(minutes=1)))
    news = report["news_articles"]
    assert news.last_materialized_at == at  # a run just wrote it...
    assert news.freshness == "FAIL" and news.data_time == T0  # ...but the newest data is 6 h old
    assert news.data_age == timedelta(hours=6, minutes=1)


@pytest.mark.slow
def test_a_stale_recorded_state_cannot_hide_staleness(home_instance):
    """The state Dagster shows is what data_freshness_sensor last recorded; if the sensor stops, the
    health report still measures data time now and takes the worse of the two."""
    instance = home_instance
    materialize(instance, T0)
    with freeze_time(T0 + timedelta(minutes=1)):
        context = dg.build_sensor_context(instance=instance, definitions=ops_defs.defs, resources=RESOURCES)
        data_freshness_sensor.evaluate_tick(context)  # records PASS, then the sensor "stops"
    report = by_asset(health_report(instance, DATASETS, now=T0 + timedelta(minutes=2)))
    assert (report["news_articles"].freshness, report["news_articles"].freshness_source) == ("PASS", "data")
    report = by_asset(health_report(instance, DATASETS, now=T0 + timedelta(hours=6)))
    assert (report["news_articles"].freshness, report["news_articles"].freshness_source) == ("FAIL", "data")
    recorded = instance.get_freshness_state_records([dg.AssetKey("news_articles")])[dg.AssetKey("news_articles")]
    assert recorded.freshness_state.value == "PASS"  # what the UI still shows


@pytest.mark.slow
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
    assert "| features | 0 | critical | UNKNOWN | - | - | never |" in table
    assert "| news_articles | 100 | ok | PASS | 0m |" in table
    assert "platform_health" not in table.split("\n", 1)[1]  # the health asset is not a dataset


def test_platform_health_in_process_scores_the_definitions_its_config_names(instance):
    from crypto_assets.health import platform_health
    from crypto_assets.health.assets import health_run_config

    # No code location: the run names the definitions to score.
    result = dg.materialize([platform_health], instance=instance,
                            run_config=health_run_config("crypto_assets.definitions:defs"))
    table = result.asset_materializations_for_node("platform_health")[0].metadata["table"].value
    assert "| price_observations |" in table and "| technical_indicators |" in table


def test_platform_health_in_process_without_definitions_fails_saying_what_to_pass(instance):
    from crypto_assets.health import platform_health

    with pytest.raises(dg.Failure, match=r"outside a code location.*'definitions': 'crypto_assets.definitions:defs'"):
        dg.materialize([platform_health], instance=instance)


@pytest.mark.slow
def test_cli_exit_code_follows_the_critical_band(home_instance, capsys):
    instance = home_instance
    args = ["--definitions", "crypto_assets_tests.ops_defs:defs"]
    assert main(args) == 1  # nothing built yet: score 0
    assert "never" in capsys.readouterr().out
    materialize(instance, datetime.now(timezone.utc))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Health 100.0 / 100 (ok)") and "price_observations" in out
    assert main([*args, "--fail-below", "101"]) == 1
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["score"] == 100
    assert [d["asset"] for d in report["datasets"]] == ["features", "news_articles", "price_observations"]


def test_cli_without_dagster_home_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main([]) == 2
    assert "DAGSTER_HOME is not set" in capsys.readouterr().err


def test_an_optional_source_nobody_set_up_is_listed_not_scored(instance):
    """Reddit without credentials: never built, so listed as not configured and left out of the
    average; once built it counts like any dataset. A required dataset never built still counts."""
    from crypto_assets.health import Dataset

    social = Dataset(key=dg.AssetKey("social_posts"), freshness_policy=ops_defs.FRESH,
                     optional_source="needs Reddit credentials")
    prices = next(d for d in DATASETS if d.name == "price_observations")
    materialize(instance, T0, assets=[ops_defs.prices])
    report = health_report(instance, [prices, social], now=T0 + timedelta(minutes=5))
    row = by_asset(report)["social_posts"]
    assert (row.score, row.band, row.freshness, row.not_configured) == (
        None, "not configured", "NOT_CONFIGURED", "needs Reddit credentials")
    assert report.score == 100 and report.band == "ok"  # prices alone
    assert "needs Reddit credentials" in report.to_text()
    assert json.loads(json.dumps(report.as_dict()))["datasets"][1]["score"] is None
    news = next(d for d in DATASETS if d.name == "news_articles")  # required, never built: counts as 0
    assert health_report(instance, [prices, news], now=T0 + timedelta(minutes=5)).score == 50
    # The project marks its optional sources so.
    from crypto_assets.definitions import defs
    optional = {d.name for d in datasets_in(defs.resolve_asset_graph()) if d.optional_source}
    assert "social_posts" in optional and "price_observations" not in optional


def test_an_optional_source_with_old_rows_but_no_credentials_is_not_configured(instance, monkeypatch):
    """The demo builds social_posts from a 2016 Reddit recording; without Reddit credentials the
    source is still not configured: listed, not scored as FAIL (it once made the overall score
    critical)."""
    from crypto_assets.definitions import defs

    social = next(d for d in datasets_in(defs.resolve_asset_graph()) if d.name == "social_posts")
    assert social.optional_env == ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT")
    prices = next(d for d in DATASETS if d.name == "price_observations")
    materialize(instance, T0, assets=[ops_defs.prices])
    instance.report_runless_asset_event(dg.AssetMaterialization("social_posts"))  # built once, long ago
    for name in social.optional_env:
        monkeypatch.delenv(name, raising=False)
    report = health_report(instance, [prices, social], now=T0 + timedelta(days=30))
    row = by_asset(report)["social_posts"]
    assert (row.score, row.freshness) == (None, "NOT_CONFIGURED")
    assert report.score == health_report(instance, [prices], now=T0 + timedelta(days=30)).score
    # Configured, the same old rows count (and are stale).
    for name in social.optional_env:
        monkeypatch.setenv(name, "set")
    row = by_asset(health_report(instance, [prices, social], now=T0 + timedelta(days=30)))["social_posts"]
    assert row.score is not None and row.freshness != "NOT_CONFIGURED"


def test_every_asset_page_says_what_its_freshness_badge_measures():
    """Dagster's caption under the badge speaks of the last materialization; the description (shown
    above it) and the metadata say the state is judged on data time, naming the column."""
    from crypto_assets.automation.policies import DATA_TIME_COLUMNS, FRESHNESS_BADGE_NOTE
    from crypto_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    judged = [node for node in graph.asset_nodes if node.freshness_policy_or_from_metadata is not None]
    assert len(judged) >= 10
    for node in judged:
        name = node.key.to_user_string()
        column = DATA_TIME_COLUMNS.get(name, "ingested_at")
        assert FRESHNESS_BADGE_NOTE in node.description, name
        assert f"`{column}`" in node.description.split(FRESHNESS_BADGE_NOTE)[1], name
        assert f"`{column}`" in node.metadata["freshness_measures"], name


def test_a_backfills_passing_check_never_hides_a_live_failure_in_the_health_score(instance):
    """Invariant 13 in the score: the newest result about the LIVE window counts; a later backfill's
    pass (about its range) does not make a failing dataset look healthy."""
    from crypto_assets.health import Dataset

    outcome = {}

    @dg.asset(name="scoped_dataset")
    def scoped_dataset():
        return 1

    @dg.asset_check(asset="scoped_dataset", name="has_rows")
    def has_rows():
        return dg.AssetCheckResult(passed=outcome["passed"], metadata={"scope": outcome["scope"], "window": "w"})

    def run(passed: bool, scope: str) -> None:
        outcome.update(passed=passed, scope=scope)
        assert dg.materialize([scoped_dataset, has_rows], instance=instance).success

    check = dg.AssetCheckKey(dg.AssetKey("scoped_dataset"), "has_rows")
    dataset = Dataset(key=dg.AssetKey("scoped_dataset"), check_keys=(check,))
    run(False, "live")
    run(True, "backfill b1")  # a 2021 backfill whose hours have rows
    row = by_asset(health_report(instance, [dataset]))["scoped_dataset"]
    assert row.failing_checks and "has_rows" in row.failing_checks[0]
    run(True, "live")  # the live window is fixed: now it counts as passing
    assert not by_asset(health_report(instance, [dataset]))["scoped_dataset"].failing_checks
