"""The alert sensors: freshness + asset-check states, and failed runs. Both start RUNNING.

`asset_state_alert_sensor` polls the instance every minute: the FreshnessDaemon's state per
asset and the latest completed result per asset check, for every dataset of the code location.
It keeps the states it has already reported in its cursor (JSON), so each change alerts once.
An alert that a sink failed to deliver keeps its old state in the cursor and is retried next tick.

`run_failure_alert_sensor` is Dagster's run-failure sensor: one alert per failed run.
"""

import json
from dataclasses import replace

import dagster as dg

from crypto_assets.alerts.messages import Alert, run_failure_alert, transitions
from crypto_assets.alerts.sinks import AlertDeliveryError, configured_sinks, deliver
from crypto_assets.health.states import (
    Dataset,
    check_states,
    daemon_freshness_states,
    datasets_in,
    last_materializations,
    utcnow,
)

POLL_SECONDS = 60


def _window(policy) -> str | None:
    fail = getattr(policy, "fail_window", None)
    warn = getattr(policy, "warn_window", None)
    if fail is None:
        return None
    text = f"fail after {fail.to_timedelta()}"
    return f"warn after {warn.to_timedelta()}, {text}" if warn is not None else text


def read_alert_states(instance: dg.DagsterInstance, datasets: list[Dataset]) -> tuple[dict, dict]:
    """Current states {"freshness": {asset: state}, "checks": {"asset:check": state}} and details per subject."""
    freshness = {key.to_user_string(): state
                 for key, state in daemon_freshness_states(instance, [d.key for d in datasets]).items()}
    checks, details = {}, {}
    for key, state in check_states(instance, [k for d in datasets for k in d.check_keys]).items():
        subject = f"{key.asset_key.to_user_string()}:{key.name}"
        checks[subject] = state.label
        details[subject] = {"partition": state.partition, "description": state.description,
                            "executed_at": state.executed_at.isoformat()}
    return {"freshness": freshness, "checks": checks}, details


def _with_freshness_details(alerts: list[Alert], instance, datasets: list[Dataset]) -> list[Alert]:
    """Add last materialization, newest partition and the policy to freshness alerts (only those:
    reading partitions for every asset on every tick would be wasted work)."""
    by_name = {d.name: d for d in datasets}
    wanted = [by_name[a.subject] for a in alerts if a.kind == "freshness" and a.subject in by_name]
    last = last_materializations(instance, wanted)
    out = []
    for alert in alerts:
        dataset = by_name.get(alert.subject)
        if alert.kind == "freshness" and dataset is not None:
            mat = last.get(dataset.key)
            alert = replace(alert, details={
                **alert.details,
                "last_materialized_at": mat.at.isoformat() if mat else None,
                "newest_partition": mat.newest_partition if mat else None,
                "policy": _window(dataset.freshness_policy),
            })
        out.append(alert)
    return out


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
def asset_state_alert_sensor(context: dg.SensorEvaluationContext):
    if context.repository_def is None:
        raise dg.DagsterInvariantViolationError("asset_state_alert_sensor needs its code location's definitions")
    datasets = datasets_in(context.repository_def.asset_graph)
    previous = json.loads(context.cursor) if context.cursor else {}
    current, details = read_alert_states(context.instance, datasets)
    alerts = transitions(previous, current, utcnow(), details)
    alerts = _with_freshness_details(alerts, context.instance, datasets)
    with configured_sinks() as sinks:
        undelivered, errors = deliver(alerts, sinks)
    context.update_cursor(json.dumps(next_cursor(previous, current, undelivered), sort_keys=True))
    for error in errors:
        context.log.error(f"alert not delivered, will retry: {error}")
    watching = f"{len(current['freshness'])} freshness states, {len(current['checks'])} check results"
    return dg.SkipReason(f"{len(alerts) - len(undelivered)} alert(s) sent, {len(undelivered)} to retry; "
                         f"watching {watching}")


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
