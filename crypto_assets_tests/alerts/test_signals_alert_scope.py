"""An alert is resolved only by an evaluation of the same scope (design invariant 13; issue 20, items 1-2).

The project's real graph, checks and alert sensor, in replay mode on a temporary warehouse and
instance; Dagster's clock is frozen at chosen moments of 15-16 May 2021 (the recordings end at
14:39 on 15 May), so "live" is the hour open then. Alerts are read back from the JSON lines of the
alert log sink.
"""

import json
import logging
import warnings
from datetime import datetime, timezone

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from crypto_assets.alerts import asset_state_alert_sensor
from crypto_assets.alerts.sinks import LOGGER_NAME
from crypto_assets.assets.common import range_tags
from crypto_assets.warehouse.resource import WarehouseResource, get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph

warnings.filterwarnings("ignore", category=dg.BetaWarning)


def at(hour: int, minute: int, day: int = 15) -> datetime:
    return datetime(2021, 5, day, hour, minute, tzinfo=timezone.utc)


class AlertLines(logging.Handler):
    """The JSON lines the log sink writes, collected (works with pytest's logging plugin off)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(record.getMessage()))

    def take(self) -> list[dict]:
        lines, self.lines = self.lines, []
        return lines


class Sensor:
    """asset_state_alert_sensor ticking on the project's definitions, its cursor carried over."""

    def __init__(self, defs: dg.Definitions, instance, url: str, lines: AlertLines, graph: ProjectGraph | None = None):
        self.defs, self.instance, self.url, self.lines, self.graph = defs, instance, url, lines, graph
        self.cursor = self.reason = None

    def tick(self, when: datetime) -> dict[str, dict]:
        """{subject: alert} of the CHECK alerts this tick sent."""
        with freeze_time(when):
            context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs,
                                              resources={"warehouse": WarehouseResource(url=self.url)})
            result = asset_state_alert_sensor.evaluate_tick(context)
        self.cursor, self.reason = result.cursor, result.skip_message
        return {a["subject"]: a for a in self.lines.take() if a["kind"] == "check"}

    def state(self, subject: str) -> str | None:
        """The live state the cursor keeps for `subject` (the cursor: a first line, then JSON)."""
        body = self.cursor if self.cursor.startswith("{") else self.cursor.split("\n", 1)[1]
        return json.loads(body)["checks"].get(subject)


@pytest.fixture
def graph(sqlite_url):
    get_warehouse.cache_clear()
    yield ProjectGraph(sqlite_url)
    get_warehouse.cache_clear()


@pytest.fixture
def sensor(graph, sqlite_url):
    lines = AlertLines()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(lines)
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        yield Sensor(graph.defs, instance, sqlite_url, lines, graph)
    logger.removeHandler(lines)


def run(sensor: Sensor, assets, first: str, last: str | None = None, backfill: str | None = None, checks_only=False):
    """Materialize `assets` (with their checks) for first..last, as part of `backfill` when given."""
    graph = sensor.graph
    tags = range_tags(first, last) if last else {}
    if backfill:
        tags["dagster/backfill"] = backfill
    selection = dg.AssetSelection.assets(*assets)
    if checks_only:
        selection = dg.AssetSelection.checks_for_assets(*assets)
    return dg.materialize([*graph.assets, *graph.checks], selection=selection, instance=sensor.instance,
                          resources=graph.resources, tags=tags, partition_key=None if last or checks_only else first)


def passed(result, asset: str, check: str) -> bool:
    (evaluation,) = [e for e in result.get_asset_check_evaluations()
                     if e.asset_key == dg.AssetKey(asset) and e.check_name == check]
    return evaluation.passed


@pytest.mark.slow
def test_a_backfill_never_resolves_a_live_alert_and_raises_its_own_naming_the_range(sensor):
    # The hour open at 16:10 lands with no row: a live alert.
    with freeze_time(at(16, 10)):
        run(sensor, ["ohlcv_bars", "technical_indicators"], "2021-05-15-16:00")
    alerts = sensor.tick(at(16, 11))
    assert alerts["technical_indicators:has_rows"]["level"] == "critical"

    # A backfill of old hours, whose has_rows passes, says nothing about the open hour: it used to
    # send "ALERT resolved: check technical_indicators:has_rows passes again".
    with freeze_time(at(16, 12)):
        backfill = run(sensor, ["price_observations", "ohlcv_bars", "technical_indicators"], "2021-05-15-00:00",
                       "2021-05-15-08:00", backfill="bf1")
    assert passed(backfill, "technical_indicators", "has_rows")
    alerts = sensor.tick(at(16, 13))
    assert [s for s, a in alerts.items() if a["level"] == "resolved"] == []
    assert sensor.state("technical_indicators:has_rows") == "FAILED_ERROR"
    # Its own failing check alerts under its own scope, naming the backfill and the range.
    assert not passed(backfill, "technical_indicators", "no_gaps")
    gaps = alerts["technical_indicators:no_gaps [backfill bf1]"]
    assert gaps["level"] == "warning"
    assert gaps["summary"] == ("check technical_indicators:no_gaps failed (WARN) in backfill bf1, range "
                               "2021-05-15-00:00...2021-05-15-08:00 (9 partitions) and the 23 before")

    # A backfill of hours whose bars are not there yet: has_rows fails for that range, alerting once.
    with freeze_time(at(16, 14)):
        run(sensor, ["technical_indicators"], "2021-05-15-10:00", "2021-05-15-12:00", backfill="bf2")
    alerts = sensor.tick(at(16, 15))
    assert alerts["technical_indicators:has_rows [backfill bf2]"]["summary"] == (
        "check technical_indicators:has_rows failed (ERROR) in backfill bf2, range "
        "2021-05-15-10:00...2021-05-15-12:00 (3 partitions)")
    assert "technical_indicators:has_rows" not in alerts  # the live alert is still the one sent at 16:11
    assert sensor.tick(at(16, 16)) == {}

    # The bars land and the same range is backfilled again: that range's alert resolves, the live one does not.
    with freeze_time(at(16, 17)):
        run(sensor, ["price_observations", "ohlcv_bars"], "2021-05-15-10:00", "2021-05-15-12:00", backfill="bf3")
        again = run(sensor, ["technical_indicators"], "2021-05-15-10:00", "2021-05-15-12:00", backfill="bf4")
    assert passed(again, "technical_indicators", "has_rows")
    alerts = sensor.tick(at(16, 18))
    resolved = [s for s, a in alerts.items() if a["level"] == "resolved"]
    assert resolved == ["technical_indicators:has_rows [backfill bf2]"]
    assert alerts["technical_indicators:has_rows [backfill bf2]"]["summary"] == (
        "check technical_indicators:has_rows passes again in backfill bf2: every range that failed was checked again")
    assert sensor.state("technical_indicators:has_rows") == "FAILED_ERROR"

    # Only a live evaluation resolves the live alert: the hour before last, whose data came in late.
    with freeze_time(at(16, 20)):
        late = run(sensor, ["price_observations", "ohlcv_bars", "technical_indicators"], "2021-05-15-14:00")
    assert passed(late, "technical_indicators", "has_rows")
    alerts = sensor.tick(at(16, 21))
    resolved = alerts["technical_indicators:has_rows"]
    assert (resolved["level"], resolved["details"]["scope"]) == ("resolved", "live")
    assert resolved["details"]["window"].startswith("2021-05-15-14:00: [")


@pytest.mark.slow
def test_a_check_with_nothing_to_judge_resolves_nothing(sensor):
    run(sensor, ["price_observations", "ohlcv_bars", "technical_indicators"], "2021-05-15-00:00", "2021-05-15-08:00")
    # Checks run from the UI just after: they judge the newest hour (and the 23 before), live, and find gaps.
    with freeze_time(at(9, 30)):
        checked = run(sensor, ["technical_indicators"], "2021-05-15-08:00", checks_only=True)
    assert not passed(checked, "technical_indicators", "no_gaps")
    alerts = sensor.tick(at(9, 31))
    assert alerts["technical_indicators:no_gaps"]["level"] == "warning"

    # A day later the source has stopped: the open hour lands empty. Its no_gaps has nothing to judge
    # (it used to "pass" and send "ALERT resolved: check technical_indicators:no_gaps passes again").
    with freeze_time(at(14, 10, day=16)):
        empty = run(sensor, ["ohlcv_bars", "technical_indicators"], "2021-05-16-14:00")
    assert not passed(empty, "technical_indicators", "has_rows")
    alerts = sensor.tick(at(14, 11, day=16))
    assert "technical_indicators:no_gaps" not in alerts
    assert "no_gaps" not in {e.check_name for e in empty.get_asset_check_evaluations()
                             if e.asset_key == dg.AssetKey("technical_indicators")}
    assert sensor.state("technical_indicators:no_gaps") == "FAILED_WARN"
    assert sensor.state("technical_indicators:has_rows") == "FAILED_ERROR"
    assert alerts["technical_indicators:has_rows"]["level"] == "critical"  # what IS wrong is still said


HOURS = dg.HourlyPartitionsDefinition(start_date="2021-04-01-00:00", end_offset=1)  # the open hour too


class Verdict(dg.Config):
    passed: bool = True
    judged: bool = True  # False: the check says it had nothing to judge (`evaluated: false`)


@dg.asset(partitions_def=HOURS, check_specs=[dg.AssetCheckSpec("verdict", asset="elsewhere")])
def elsewhere(config: Verdict):
    """A dataset whose check is defined outside the project's data checks: no `scope` metadata."""
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="verdict", passed=config.passed,
                              metadata={} if config.judged else {"evaluated": False, "reason": "no rows"})


@pytest.mark.slow
def test_results_that_do_not_state_their_scope_get_it_from_their_run(sqlite_url):
    defs = dg.Definitions(assets=[elsewhere])
    lines = AlertLines()
    logging.getLogger(LOGGER_NAME).addHandler(lines)
    try:
        with dg.instance_for_test() as instance:
            sensor = Sensor(defs, instance, sqlite_url, lines)

            def outcome(when, partition, passed=True, judged=True, tags=None):
                with freeze_time(when):
                    dg.materialize([elsewhere], instance=instance, partition_key=partition, tags=tags or {},
                                   run_config={"ops": {"elsewhere": {"config": {"passed": passed, "judged": judged}}}})

            outcome(at(16, 10), "2021-05-15-16:00", passed=False)  # the open hour fails: live
            assert sensor.tick(at(16, 11))["elsewhere:verdict"]["level"] == "critical"
            # A backfill's pass (from its run's tags), and a result that judged nothing, resolve nothing.
            outcome(at(16, 12), "2021-05-15-03:00", tags={"dagster/backfill": "bf9"})
            outcome(at(16, 13), "2021-05-15-16:00", judged=False)
            assert sensor.tick(at(16, 14)) == {}
            assert sensor.state("elsewhere:verdict") == "FAILED_ERROR"
            # An old hour run by hand, failing, is its own range alert; the live hour passing resolves the live one.
            outcome(at(16, 15), "2021-05-14-03:00", passed=False)
            outcome(at(16, 16), "2021-05-15-16:00")
            alerts = sensor.tick(at(16, 17))
            assert alerts["elsewhere:verdict"]["level"] == "resolved"
            assert alerts["elsewhere:verdict [range 2021-05-14-03:00]"]["summary"] == (
                "check elsewhere:verdict failed (ERROR) for range 2021-05-14-03:00")
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(lines)
