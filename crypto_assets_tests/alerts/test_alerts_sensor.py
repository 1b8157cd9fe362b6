"""The alert sensors on a real (temporary) Dagster instance.

Freshness is judged on the newest data in a real (temporary) warehouse at controlled times
(`freeze_time`, no sleeping), and published by the project's data_freshness_sensor; check
results come from real materializations; alerts are read back from the JSON log lines and from a
webhook server on 127.0.0.1.
"""

import json
import logging
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.definitions.instigation_logger import get_instigation_log_records
from dagster._core.test_utils import freeze_time

from crypto_assets.alerts import WEBHOOK_ENV, asset_state_alert_sensor, run_failure_alert_sensor
from crypto_assets.alerts.sinks import LOGGER_NAME
from crypto_assets.freshness.sensor import data_freshness_sensor
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets_tests import ops_defs
from crypto_assets_tests.alerts.webhook_server import webhook_server  # noqa: F401  (fixture)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
RESOURCES = {"warehouse": WarehouseResource()}
PRICES = dg.AssetKey("price_observations")


@pytest.fixture
def instance(configured_warehouse):
    with dg.instance_for_test() as inst:  # sensor contexts need a persistent instance
        yield inst


@pytest.fixture
def alert_log(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)

    def read():
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER_NAME]
        caplog.clear()
        return lines

    return read


class Ticker:
    """Runs the freshness sensor and the alert sensor like the daemon would, at chosen times."""

    def __init__(self, instance):
        self.instance, self.cursor, self.now, self.ticks, self.log_key = instance, None, T0, 0, None

    def freshness(self, at: datetime) -> str:
        """The state data_freshness_sensor records for prices at `at` (what the UI badge shows)."""
        self.now = at
        with freeze_time(at):
            context = dg.build_sensor_context(instance=self.instance, definitions=ops_defs.defs, resources=RESOURCES)
            data_freshness_sensor.evaluate_tick(context)
        return self.instance.get_freshness_state_records([PRICES])[PRICES].freshness_state.value

    def sensor(self):
        """One tick, its log captured under a log key as the daemon does (what "View logs" shows)."""
        self.ticks += 1
        self.log_key = ["alert_sensor_test", str(self.ticks)]
        with freeze_time(self.now):
            context = dg.SensorEvaluationContext(
                instance_ref=self.instance.get_ref(), instance=self.instance, cursor=self.cursor, log_key=self.log_key,
                repository_name="ops_test", sensor_name="asset_state_alert_sensor", definitions=ops_defs.defs,
                resources=RESOURCES)
            with context:
                result = asset_state_alert_sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result

    def tick_log(self) -> list[str]:
        """The last tick's log lines, as the UI shows them."""
        return [r.get("msg", "") for r in get_instigation_log_records(self.instance, self.log_key)]


@pytest.fixture
def ticker(instance):
    return Ticker(instance)


def materialize(instance, at: datetime, passed: bool = True, severity: str = "ERROR", data_hours_old: float = 0.0):
    with freeze_time(at):
        dg.materialize([ops_defs.prices, ops_defs.news], instance=instance, resources=RESOURCES,
                       run_config=ops_defs.run_config(passed, severity, data_hours_old))


@pytest.mark.slow
def test_freshness_alerts_once_per_state_change_and_on_recovery(instance, ticker, alert_log, webhook_server,
                                                                monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, webhook_server.url)
    materialize(instance, T0)
    assert ticker.freshness(T0 + timedelta(minutes=5)) == "PASS"
    ticker.sensor()
    assert alert_log() == []  # healthy from the start: nothing to say

    assert ticker.freshness(T0 + timedelta(hours=3)) == "WARN"
    ticker.sensor()
    news_warn, warn = alert_log()
    assert news_warn["subject"] == "news_articles" and warn["subject"] == "price_observations"
    assert (warn["kind"], warn["level"], warn["previous"], warn["current"]) == ("freshness", "warning", "PASS", "WARN")
    assert warn["details"]["policy"] == "warn after 2:00:00, fail after 4:00:00"
    assert warn["details"]["newest_data_at"] == T0.isoformat() and warn["details"]["data_age"] == "3h00m"

    ticker.sensor()
    ticker.sensor()
    assert alert_log() == []  # still WARN: no repeat

    assert ticker.freshness(T0 + timedelta(hours=5)) == "FAIL"
    ticker.sensor()
    assert [(a["subject"], a["level"], a["current"]) for a in alert_log()] == [
        ("news_articles", "critical", "FAIL"), ("price_observations", "critical", "FAIL")]

    # A run now that brings only old data (a backfill, a replay) resolves nothing.
    materialize(instance, T0 + timedelta(hours=5, minutes=30), data_hours_old=48)
    assert ticker.freshness(T0 + timedelta(hours=5, minutes=31)) == "FAIL"
    ticker.sensor()
    assert alert_log() == []

    materialize(instance, T0 + timedelta(hours=6))
    assert ticker.freshness(T0 + timedelta(hours=6, minutes=1)) == "PASS"
    result = ticker.sensor()
    # Visible in the UI: each alert is a line of the sensor tick's log.
    tick_log = ticker.tick_log()
    assert any("ALERT resolved: price_observations is fresh again" in line for line in tick_log), tick_log
    resolved = alert_log()
    assert [(a["subject"], a["level"], a["previous"], a["current"]) for a in resolved] == [
        ("news_articles", "resolved", "FAIL", "PASS"), ("price_observations", "resolved", "FAIL", "PASS")]
    # The tick's reason (and the start of its cursor, the tick list's Cursor column) says what it sent.
    assert result.skip_message.startswith("2 alerts: news_articles (resolved), price_observations (resolved). ")
    assert result.cursor.startswith("2 alerts: news_articles (resolved), price_observations (resolved)\n{")

    # Every alert also reached the webhook, once.
    posted = [body["text"] for body in webhook_server.bodies]
    assert len(posted) == 2 + 2 + 2
    assert set(webhook_server.content_types) == {"application/json"}
    assert posted[1] == ("[crypto-assets warning] price_observations is late (past the warning window): "
                         "freshness PASS -> WARN")


@pytest.mark.slow
def test_failed_check_alerts_once_and_again_on_recovery(instance, ticker, alert_log):
    materialize(instance, T0, passed=False)
    ticker.sensor()
    (failed,) = [a for a in alert_log() if a["kind"] == "check"]
    assert (failed["subject"], failed["level"], failed["current"]) == ("price_observations:non_empty", "critical", "FAILED_ERROR")
    assert failed["details"]["description"] == "no rows in the partition"

    materialize(instance, T0 + timedelta(minutes=10), passed=False)  # fails again: same state, no new alert
    ticker.sensor()
    assert alert_log() == []

    materialize(instance, T0 + timedelta(minutes=20), passed=False, severity="WARN")  # severity changed
    ticker.sensor()
    assert [(a["level"], a["previous"], a["current"]) for a in alert_log()] == [
        ("warning", "FAILED_ERROR", "FAILED_WARN")]

    materialize(instance, T0 + timedelta(minutes=30), passed=True)
    ticker.sensor()
    assert [(a["subject"], a["level"], a["current"]) for a in alert_log()] == [
        ("price_observations:non_empty", "resolved", "PASSED")]


def test_undelivered_webhook_alert_is_retried_on_the_next_tick(instance, ticker, alert_log, webhook_server,
                                                               monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, webhook_server.url)
    webhook_server.status = 503
    materialize(instance, T0, passed=False)
    result = ticker.sensor()
    assert result.skip_message.startswith("0 alerts sent; 1 to retry: price_observations:non_empty (critical). ")
    assert len(alert_log()) == 1  # the log line is always written
    assert webhook_server.bodies == [] and webhook_server.attempts == 1

    webhook_server.status = 200
    ticker.sensor()
    assert [b["text"] for b in webhook_server.bodies] == ["[crypto-assets critical] check price_observations:non_empty failed (ERROR)"]
    ticker.sensor()
    assert len(webhook_server.bodies) == 1  # delivered: not sent again


@dg.asset(group_name="ingest")
def broken_source() -> None:
    raise RuntimeError("coingecko: failed after 5 attempts (HTTP 503)")


def test_run_failure_sensor_alerts_with_the_step_error(instance, alert_log, webhook_server, monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, webhook_server.url)
    result = dg.materialize([broken_source], instance=instance, raise_on_error=False, tags={"dagster/partition": "2021-05-15-10:00"})
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    (failure,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_event=failure.dagster_event,
        dagster_instance=instance, dagster_run=run).for_run_failure()
    run_failure_alert_sensor(context)

    (alert,) = alert_log()
    assert (alert["kind"], alert["level"], alert["subject"]) == ("run", "critical", "assets broken_source")
    assert "coingecko: failed after 5 attempts (HTTP 503)" in alert["summary"]
    assert alert["details"]["run_id"] == result.run_id and alert["details"]["partition"] == "2021-05-15-10:00"
    assert alert["details"]["failed_steps"] == "broken_source"
    (body,) = webhook_server.bodies
    assert "coingecko: failed after 5 attempts" in body["text"]


def test_run_failure_sensor_fails_its_tick_when_the_webhook_is_down_without_leaking_the_url(
        instance, alert_log, webhook_server, monkeypatch):
    secret_url = webhook_server.url + "/T000/B000/s3cr3t-token"
    monkeypatch.setenv(WEBHOOK_ENV, secret_url)
    webhook_server.status = 500
    result = dg.materialize([broken_source], instance=instance, raise_on_error=False)
    (failure,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_event=failure.dagster_event,
        dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id)).for_run_failure()
    with pytest.raises(Exception) as raised:
        run_failure_alert_sensor(context)
    assert "webhook: HTTP 500" in str(raised.value) and "s3cr3t" not in str(raised.value)
    assert len(alert_log()) == 1  # still logged
