"""Alerts: what changed, turned into a message. Pure functions, no Dagster instance.

A state change alerts once: freshness PASS -> WARN, WARN -> FAIL, a check that starts failing
(or fails at a higher severity). Going back to PASS / passed sends a `resolved` message.
The states compared are the sensor cursor's previous ones and the instance's current ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime

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


def run_failure_alert(job: str, run_id: str, message: str, at: datetime, details: Mapping | None = None) -> Alert:
    first_line = (message or "").strip().splitlines()[0][:300] if (message or "").strip() else "no message"
    return Alert("run", job, CRITICAL, None, "FAILURE", f"run of {job} failed: {first_line}", at,
                 {"run_id": run_id, **dict(details or {})})


def transitions(previous: Mapping[str, Mapping[str, str]], current: Mapping[str, Mapping[str, str]],
                at: datetime, details: Mapping[str, Mapping] | None = None) -> list[Alert]:
    """Alerts for every changed state. States: {"freshness": {asset: state}, "checks": {check: state}}."""
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
    return alerts


def slack_payload(alert: Alert) -> dict:
    """Slack-compatible webhook body: `text` (notification fallback) plus `blocks`."""
    icon = {CRITICAL: ":red_circle:", WARNING: ":large_orange_circle:", RESOLVED: ":large_green_circle:"}[alert.level]
    facts = [f"*{key}*: {value}" for key, value in alert.details.items() if value not in (None, "", [], {})]
    context = f"{alert.kind} · {alert.level} · {alert.at:%Y-%m-%d %H:%M} UTC"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{alert.summary}*"}},
    ]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)[:2900]}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"[crypto-assets {alert.level}] {alert.summary}", "blocks": blocks}
