"""The alert sensors: freshness + asset-check states, and failed runs. Both start RUNNING.

`asset_state_alert_sensor` polls every minute: each dataset's freshness on DATA time (the newest
row in the warehouse against its policy, see `crypto_assets.freshness`) and the latest completed
result per asset check, for every dataset of the code location.
It keeps the states it has already reported in its cursor (JSON), so each change alerts once.
An alert that a sink failed to deliver keeps its old state in the cursor and is retried next tick.
Each alert also shows in the UI: a line of the sensor tick's log ("View logs" on the tick).

`run_failure_alert_sensor` is Dagster's run-failure sensor: one alert per failed run.
"""

import json

import dagster as dg

from crypto_assets.alerts.messages import Alert, run_failure_alert, transitions
from crypto_assets.alerts.sinks import AlertDeliveryError, configured_sinks, deliver
from crypto_assets.freshness import UNKNOWN, format_age, policy_windows
from crypto_assets.health.states import (
    Dataset,
    check_states,
    data_freshness,
    datasets_in,
    freshness_of,
    last_materialized_at,
    recorded_freshness_states,
    utcnow,
)
from crypto_assets.warehouse.resource import WarehouseResource

POLL_SECONDS = 60


def _window(policy) -> str | None:
    warn, fail = policy_windows(policy)
    if fail is None:
        return None
    return f"warn after {warn}, fail after {fail}" if warn is not None else f"fail after {fail}"


def read_alert_states(instance: dg.DagsterInstance, datasets: list[Dataset], warehouse=None,
                      now=None) -> tuple[dict, dict]:
    """Current states {"freshness": {asset: state}, "checks": {"asset:check": state}} and details per subject.

    Freshness is on data time (the worse of the state Dagster shows and the one measured now), so
    a backfill of old hours or a run that brought nothing never resolves a staleness alert.
    """
    now = now or utcnow()
    keys = [d.key for d in datasets]
    materialized = last_materialized_at(instance, datasets)
    data = data_freshness(datasets, now, warehouse)
    by_key = freshness_of(datasets, recorded_freshness_states(instance, keys), data, materialized)
    freshness, details = {}, {}
    for dataset in datasets:
        state, _source = by_key[dataset.key]
        if dataset.freshness_policy is None or (state == UNKNOWN and dataset.key not in materialized):
            continue  # nothing to be stale yet: a fresh install does not alert
        freshness[dataset.name] = state
        measured = data.get(dataset.key)
        details[dataset.name] = {
            "newest_data_at": measured.data_time.isoformat() if measured and measured.data_time else None,
            "data_age": format_age(measured.lag) if measured else None,
            "last_run_wrote_at": materialized[dataset.key].isoformat() if dataset.key in materialized else None,
            "policy": _window(dataset.freshness_policy),
            "problem": measured.problem if measured else None,
        }
    checks = {}
    for key, state in check_states(instance, [k for d in datasets for k in d.check_keys]).items():
        subject = f"{key.asset_key.to_user_string()}:{key.name}"
        checks[subject] = state.label
        details[subject] = {"window": state.window, "partition": state.partition,
                            "description": state.description, "executed_at": state.executed_at.isoformat()}
    return {"freshness": freshness, "checks": checks}, details


def next_cursor(previous: dict, current: dict, undelivered: list[Alert]) -> dict:
    """The current states, except that undelivered alerts keep their previous state (retried next tick)."""
    cursor = {section: dict(states) for section, states in current.items()}
    section_of = {"freshness": "freshness", "check": "checks"}
    for alert in undelivered:
        section = section_of[alert.kind]
        if alert.previous is None:
            cursor[section].pop(alert.subject, None)
        else:
            cursor[section][alert.subject] = alert.previous
    return cursor


@dg.sensor(
    name="asset_state_alert_sensor",
    minimum_interval_seconds=POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sends an alert (JSON log line; Slack-compatible webhook when CRYPTO_ALERT_WEBHOOK_URL is set) when an "
        "asset's freshness turns WARN/FAIL or an asset check fails, and again when it recovers. Once per change."
    ),
)
def asset_state_alert_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    if context.repository_def is None:
        raise dg.DagsterInvariantViolationError("asset_state_alert_sensor needs its code location's definitions")
    datasets = datasets_in(context.repository_def.asset_graph)
    previous = json.loads(context.cursor) if context.cursor else {}
    now = utcnow()
    current, details = read_alert_states(context.instance, datasets, warehouse.get(), now)
    alerts = transitions(previous, current, now, details)
    with configured_sinks() as sinks:
        undelivered, errors = deliver(alerts, sinks)
    context.update_cursor(json.dumps(next_cursor(previous, current, undelivered), sort_keys=True))
    # What was alerted is shown in the UI: one line per alert in the tick's log ("View logs").
    for alert in alerts:
        log = context.log.info if alert.level == "resolved" else context.log.warning
        log(f"ALERT {alert.level}: {alert.summary} {json.dumps(alert.details, default=str)}")
    for error in errors:
        context.log.error(f"alert not delivered, will retry: {error}")
    return dg.SkipReason(tick_summary(alerts, undelivered, current))


def tick_summary(alerts: list[Alert], undelivered: list[Alert], current: dict) -> str:
    """The tick's reason: how many alerts went out (each is a line of the tick's log) and what is
    not fresh or failing right now."""
    bad = sorted(f"{k} {v}" for k, v in current["freshness"].items() if v != "PASS")
    failing = sorted(k for k, v in current["checks"].items() if v != "PASSED")
    return (f"{len(alerts) - len(undelivered)} alert(s) sent, {len(undelivered)} to retry (one log line each); "
            f"watching {len(current['freshness'])} freshness states (not fresh: {', '.join(bad) or 'none'}), "
            f"{len(current['checks'])} check results (failing: {', '.join(failing) or 'none'})")


def _run_label(run: dg.DagsterRun, failed_steps: list[str]) -> str:
    """A named job says what ran; Dagster's implicit asset jobs (`__ASSET_JOB`...) do not: name the assets."""
    if not run.job_name.startswith("__"):
        return run.job_name
    if run.asset_selection:
        return "assets " + ", ".join(sorted(k.to_user_string() for k in run.asset_selection))
    return "assets " + ", ".join(failed_steps) if failed_steps else run.job_name


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    minimum_interval_seconds=POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert (JSON log line; webhook when CRYPTO_ALERT_WEBHOOK_URL is set) for every failed run.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext):
    run = context.dagster_run
    step_failures = context.get_step_failure_events()
    error = step_failures[0].step_failure_data.error if step_failures else None
    while error is not None and error.cause is not None:  # Dagster wraps the user's exception
        error = error.cause
    message = error.message if error is not None else context.failure_event.message
    tags = run.tags
    partition = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']}...{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags else None)
    failed_steps = [e.step_key for e in step_failures if e.step_key]
    alert = run_failure_alert(_run_label(run, failed_steps), run.run_id, message or "", utcnow(), {
        "job": run.job_name,
        "partition": partition,
        "failed_steps": ", ".join(failed_steps),
    })
    with configured_sinks() as sinks:
        _, errors = deliver([alert], sinks)
    if errors:  # the log sink has it; fail the tick so the UI shows the webhook problem
        raise AlertDeliveryError("; ".join(errors))


SENSORS = [asset_state_alert_sensor, run_failure_alert_sensor]
