"""Alerts: what changed, turned into a message. Pure functions, no Dagster instance.

A state change alerts once: freshness PASS -> WARN, WARN -> FAIL, a check that starts failing
(or fails at a higher severity). Going back to PASS / passed sends a `resolved` message.
The states compared are the sensor cursor's previous ones and the instance's current ones.

Check states are per scope (`crypto_assets.alerts.scoped`): `checks` holds the live window's
(`asset:check`), `ranges` a backfill's or an old range's (`asset:check [backfill <id>]`,
`asset:check [range <first>...<last>]`); each resolves only with results of its own scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime

from crypto_assets.sources.client import redact_then_cut

# Alert levels, most severe first.
CRITICAL, WARNING, RESOLVED = "critical", "warning", "resolved"

_FRESHNESS_LEVEL = {"WARN": WARNING, "FAIL": CRITICAL}
_CHECK_LEVEL = {"FAILED_WARN": WARNING, "FAILED_ERROR": CRITICAL}


@dataclass(frozen=True)
class Alert:
    kind: str  # freshness / check / run
    subject: str  # asset, asset:check, or job name
    level: str  # critical / warning / resolved
    previous: str | None
    current: str
    summary: str
    at: datetime
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        return out


def freshness_alert(asset: str, previous: str | None, current: str, at: datetime,
                    details: Mapping | None = None) -> Alert | None:
    """WARN/FAIL entered (or changed between them) alerts; WARN/FAIL -> PASS resolves.

    UNKNOWN (never materialized) and NOT_APPLICABLE do not alert: a fresh install has nothing
    to be stale yet. The health score still counts UNKNOWN as failed.
    """
    if previous == current:
        return None
    details = dict(details or {})
    if current in _FRESHNESS_LEVEL:
        what = "late (past the warning window)" if current == "WARN" else "stale (past the fail window)"
        return Alert("freshness", asset, _FRESHNESS_LEVEL[current], previous, current,
                     f"{asset} is {what}: freshness {previous or 'unseen'} -> {current}", at, details)
    if current == "PASS" and previous in _FRESHNESS_LEVEL:
        return Alert("freshness", asset, RESOLVED, previous, current,
                     f"{asset} is fresh again: freshness {previous} -> PASS", at, details)
    return None


def check_alert(check: str, previous: str | None, current: str, at: datetime,
                details: Mapping | None = None) -> Alert | None:
    """A check that starts failing, or fails at another severity, alerts; failed -> passed resolves."""
    if previous == current:
        return None
    details = dict(details or {})
    if current in _CHECK_LEVEL:
        severity = current.removeprefix("FAILED_")
        return Alert("check", check, _CHECK_LEVEL[current], previous, current,
                     f"check {check} failed ({severity})", at, details)
    if current == "PASSED" and previous in _CHECK_LEVEL:
        return Alert("check", check, RESOLVED, previous, current, f"check {check} passes again", at, details)
    return None


def range_check_alert(subject: str, previous: str | None, current: str, at: datetime,
                      details: Mapping | None = None) -> Alert | None:
    """A backfill's (or an old range's) check: failing alerts, naming the range that failed; it
    resolves once every range that failed passed again in a later evaluation of that range."""
    if previous == current:
        return None
    details = dict(details or {})
    check, _, scope = subject.partition(" [")
    scope = scope.rstrip("]")
    failing = list(details.get("failing") or [])
    if current in _CHECK_LEVEL:
        severity = current.removeprefix("FAILED_")
        where = f"for {scope}" if scope.startswith("range ") else f"in {scope}"
        if failing and not scope.startswith("range "):
            where += f", range {failing[0]}"
        if len(failing) > 1:
            where += f" and {len(failing) - 1} more range(s)"
        return Alert("check", subject, _CHECK_LEVEL[current], previous, current,
                     f"check {check} failed ({severity}) {where}", at, details)
    if current == "PASSED" and previous in _CHECK_LEVEL:
        where = f"for {scope}" if scope.startswith("range ") else f"in {scope}"
        return Alert("check", subject, RESOLVED, previous, current,
                     f"check {check} passes again {where}: every range that failed was checked again", at, details)
    return None


def run_failure_alert(job: str, run_id: str, message: str, at: datetime, details: Mapping | None = None) -> Alert:
    first_line = redact_then_cut((message or "").strip().splitlines()[0], None, 300) if (message or "").strip() \
        else "no message"
    return Alert("run", job, CRITICAL, None, "FAILURE", f"run of {job} failed: {first_line}", at,
                 {"run_id": run_id, **dict(details or {})})


def transitions(previous: Mapping[str, Mapping], current: Mapping[str, Mapping[str, str]],
                at: datetime, details: Mapping[str, Mapping] | None = None) -> list[Alert]:
    """Alerts for every changed state. States: {"freshness": {asset: state}, "checks": {check: state},
    "ranges": {"check [scope]": state}}; a previous range may be the cursor's entry ({"state": ...})."""
    details = details or {}
    alerts = []
    for asset, state in sorted(current.get("freshness", {}).items()):
        alert = freshness_alert(asset, previous.get("freshness", {}).get(asset), state, at, details.get(asset))
        if alert:
            alerts.append(alert)
    for check, state in sorted(current.get("checks", {}).items()):
        alert = check_alert(check, previous.get("checks", {}).get(check), state, at, details.get(check))
        if alert:
            alerts.append(alert)
    for subject, state in sorted(current.get("ranges", {}).items()):
        before = previous.get("ranges", {}).get(subject)
        before = before.get("state") if isinstance(before, Mapping) else before
        alert = range_check_alert(subject, before, state, at, details.get(subject))
        if alert:
            alerts.append(alert)
    return alerts


_LEVEL_RANK = {CRITICAL: 0, WARNING: 1, RESOLVED: 2}


def headline(alerts: list[Alert], undelivered: list[Alert], shown: int = 3) -> str:
    """What a tick did, in one line: `2 alerts: ohlcv_bars:has_rows (critical), price_observations
    (resolved)` (the most severe first, `shown` named), plus those to retry. It starts the tick's
    cursor (the tick list's Cursor column shows its first ~20 characters) and its skip reason."""
    def names(items):
        items = sorted(items, key=lambda a: _LEVEL_RANK.get(a.level, 3))
        text = ", ".join(f"{a.subject} ({a.level})" for a in items[:shown])
        return text + (f", and {len(items) - shown} more" if len(items) > shown else "")

    sent = [a for a in alerts if a not in undelivered]
    line = f"{len(sent)} alert{'' if len(sent) == 1 else 's'}" + (f": {names(sent)}" if sent else " sent")
    if undelivered:
        line += f"; {len(undelivered)} to retry: {names(undelivered)}"
    return line


def slack_payload(alert: Alert) -> dict:
    """Slack-compatible webhook body: `text` (notification fallback) plus `blocks`."""
    icon = {CRITICAL: ":red_circle:", WARNING: ":large_orange_circle:", RESOLVED: ":large_green_circle:"}[alert.level]
    facts = [f"*{key}*: {value}" for key, value in alert.details.items() if value not in (None, "", [], {})]
    context = f"{alert.kind} · {alert.level} · {alert.at:%Y-%m-%d %H:%M} UTC"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{alert.summary}*"}},
    ]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": redact_then_cut("\n".join(facts), None, 2900)}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"[crypto-assets {alert.level}] {alert.summary}", "blocks": blocks}
