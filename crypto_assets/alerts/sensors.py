"""The alert sensors: freshness + asset-check states, and failed runs. Both start RUNNING.

`asset_state_alert_sensor` polls every minute: each dataset's freshness on DATA time (the newest
row in the warehouse against its policy, see `crypto_assets.freshness`) and the asset checks' results
BY SCOPE (`crypto_assets.alerts.scoped`): the live window's state is its newest live result, and a
backfill's failing results raise their own alerts naming the range; a backfill never resolves a
live alert, and a check with nothing to judge resolves nothing (design invariant 13).
It keeps the states it has already reported in its cursor, so each change alerts once.
An alert that a sink failed to deliver keeps its old state in the cursor and is retried next tick.

What a tick did shows in the UI's tick list: the cursor starts with one line (`2 alerts:
ohlcv_bars:has_rows (critical), ...` or `0 alerts sent`; the list's Cursor column shows its start)
followed by the states as JSON; the same line starts the tick's skip reason (the tooltip of its
"0 runs requested" tag, and the tick's details); each alert is a line of the tick's log ("View logs").

`run_failure_alert_sensor` is Dagster's run-failure sensor: one alert per failed run.
"""

import json

import dagster as dg

from crypto_assets.alerts.messages import Alert, headline, run_failure_alert, transitions
from crypto_assets.alerts.scoped import live_states, range_states, recent_evaluations
from crypto_assets.alerts.sinks import AlertDeliveryError, configured_sinks, deliver
from crypto_assets.freshness import UNKNOWN, format_age, policy_windows
from crypto_assets.health.states import (
    Dataset,
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
                      now=None, previous: dict | None = None, partitions_defs: dict | None = None
                      ) -> tuple[dict, dict, dict]:
    """Current states {"freshness": {asset: state}, "checks": {"asset:check": state}, "ranges":
    {"asset:check [scope]": state}}, details per subject, and the range entries the cursor keeps.

    Freshness is on data time (the worse of the state Dagster shows and the one measured now), so
    a backfill of old hours or a run that brought nothing never resolves a staleness alert. Checks
    are per scope (see `crypto_assets.alerts.scoped`); `previous` is the last tick's cursor and
    `partitions_defs` {asset key: partitions definition} places results that do not state their scope.
    """
    now = now or utcnow()
    previous = previous or {}
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
    evaluations = recent_evaluations(instance, [k for d in datasets for k in d.check_keys], partitions_defs or {})
    checks, check_details = live_states(evaluations, previous.get("checks", {}))
    ranges, range_details, entries = range_states(evaluations, previous.get("ranges", {}), now)
    details.update(check_details)
    details.update(range_details)
    return {"freshness": freshness, "checks": checks, "ranges": ranges}, details, entries


def next_cursor(previous: dict, current: dict, undelivered: list[Alert], range_entries: dict | None = None) -> dict:
    """The current states, except that undelivered alerts keep their previous state (retried next
    tick). Range subjects are kept while they fail (`range_entries`: their cursor entries)."""
    cursor = {section: dict(current.get(section, {})) for section in ("freshness", "checks")}
    ranges = {subject: entry for subject, entry in (range_entries or {}).items() if entry["state"] != "PASSED"}
    for alert in undelivered:
        if alert.kind == "check" and (alert.subject in (range_entries or {})
                                      or alert.subject in previous.get("ranges", {})):
            if alert.subject in previous.get("ranges", {}):
                ranges[alert.subject] = previous["ranges"][alert.subject]
            else:
                ranges.pop(alert.subject, None)
            continue
        section = {"freshness": "freshness", "check": "checks"}[alert.kind]
        if alert.previous is None:
            cursor[section].pop(alert.subject, None)
        else:
            cursor[section][alert.subject] = alert.previous
    if ranges:
        cursor["ranges"] = ranges
    return cursor


def parse_cursor(cursor: str | None) -> dict:
    """The states kept in a cursor: `<headline>\n<JSON>` (or a bare JSON cursor of earlier versions)."""
    if not cursor:
        return {}
    body = cursor if cursor.lstrip().startswith("{") else cursor.partition("\n")[2]
    return json.loads(body) if body.strip() else {}


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
    asset_graph = context.repository_def.asset_graph
    datasets = datasets_in(asset_graph)
    partitions_defs = {d.key: asset_graph.get(d.key).partitions_def for d in datasets}
    previous = parse_cursor(context.cursor)
    now = utcnow()
    current, details, ranges = read_alert_states(context.instance, datasets, warehouse.get(), now, previous,
                                                 partitions_defs)
    alerts = transitions(previous, current, now, details)
    with configured_sinks() as sinks:
        undelivered, errors = deliver(alerts, sinks)
    line = headline(alerts, undelivered)
    # The tick list shows the cursor (its start) and, on hover, the skip reason: both start with the line.
    context.update_cursor(line + "\n" + json.dumps(next_cursor(previous, current, undelivered, ranges),
                                                   sort_keys=True, default=str))
    # Each alert is also a line of the tick's log ("View logs"), with its details.
    for alert in alerts:
        log = context.log.info if alert.level == "resolved" else context.log.warning
        log(f"ALERT {alert.level}: {alert.summary} {json.dumps(alert.details, default=str)}")
    for error in errors:
        context.log.error(f"alert not delivered, will retry: {error}")
    return dg.SkipReason(tick_summary(line, current))


def tick_summary(line: str, current: dict) -> str:
    """The tick's reason: what it sent (`headline`), then what is open now, in counts."""
    not_fresh = sum(1 for v in current["freshness"].values() if v != "PASS")
    failing = sum(1 for v in current["checks"].values() if v != "PASSED")
    ranges = sum(1 for v in current.get("ranges", {}).values() if v != "PASSED")
    return (f"{line}. Open now: {not_fresh} of {len(current['freshness'])} datasets not fresh, {failing} of "
            f"{len(current['checks'])} live checks failing, {ranges} backfill/range checks failing "
            "(each alert is a line of this tick's log).")


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
