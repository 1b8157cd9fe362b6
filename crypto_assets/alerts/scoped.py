"""Asset-check states BY SCOPE, for the alert sensor (design invariant 13).

An alert is about a scope and only an evaluation of the same scope resolves it:

- **Live** (subject `asset:check`): the state is the newest *live* evaluation of the check (see
  `crypto_assets.checks.scope`: the window reaches the newest partitions and the run is no
  backfill). A backfill's results never change it. When none of the newest HISTORY evaluations is
  live (a long backfill ran since), the previous live state is kept.
- **Ranges** (subject `asset:check [backfill <id>]` or `asset:check [range <first>...<last>]`): a
  backfill's or an old range's failing result raises its own alert, naming the range. The subject
  keeps the ranges (the `window` each failing evaluation judged) that failed; a range stops failing
  when a later evaluation of the SAME range (re-executed, or a new backfill of it) passes, and the
  subject resolves when none is left. Live results never resolve a range, and a passing range never
  resolves a live alert. A subject with more than MAX_WINDOWS failing ranges stops listing them and
  only expires; every range subject is forgotten (silently) RANGE_TTL after its last failure.
- **Nothing to judge**: a data check with nothing to judge yields no result (Dagster: "skipped"),
  so there is nothing to read here; a result that says `evaluated: false` in its metadata (from a
  check defined elsewhere) is ignored the same way. Neither raises nor resolves anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dagster as dg

from crypto_assets.checks.scope import LIVE, is_live, scope_of_run
from crypto_assets.dagster_internals import COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES

HISTORY = 10  # completed evaluations read per check and tick (a tick sees at most this many new ones)
RANGE_TTL = timedelta(days=7)
MAX_WINDOWS = 50
_SEVERITY_RANK = {"PASSED": 0, "FAILED_WARN": 1, "FAILED_ERROR": 2}


@dataclass(frozen=True)
class Evaluation:
    """One completed evaluation of a check, with the scope it is about."""

    check: str  # "asset:check"
    passed: bool
    severity: str  # "ERROR" / "WARN"
    scope: str  # "live", "backfill <id>", "range <first>...<last>"
    window: str  # what it judged (its `window` metadata, or the run's partitions)
    executed_at: datetime
    run_id: str
    description: str | None = None

    @property
    def label(self) -> str:
        return "PASSED" if self.passed else f"FAILED_{self.severity}"

    @property
    def live(self) -> bool:
        return is_live(self.scope)

    def details(self) -> dict:
        return {"window": self.window, "scope": self.scope, "description": self.description,
                "run_id": self.run_id, "executed_at": self.executed_at.isoformat()}


def _text(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def recent_evaluations(instance: dg.DagsterInstance, check_keys: Sequence[dg.AssetCheckKey],
                       partitions_defs: Mapping[dg.AssetKey, object], limit: int = HISTORY
                       ) -> dict[str, list[Evaluation]]:
    """{"asset:check": its newest completed, evaluated results, newest first} for every check key
    (an empty list for a check without one). One query per check, one for the runs of results
    that do not state their scope."""
    records = {}
    for key in check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=limit, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES)
        records[key] = [r for r in history if r.evaluation is not None]
    unscoped = {r.run_id for rs in records.values() for r in rs if "scope" not in r.evaluation.metadata}
    tags = {run.run_id: run.tags for run in instance.get_runs(dg.RunsFilter(run_ids=sorted(unscoped)))} \
        if unscoped else {}
    out = {}
    for key, rs in records.items():
        subject = f"{key.asset_key.to_user_string()}:{key.name}"
        out[subject] = []
        for record in rs:
            evaluation = record.evaluation
            metadata = evaluation.metadata
            if _text(metadata.get("evaluated")) in ("False", "false"):
                continue  # nothing judged: resolves nothing, raises nothing
            at = datetime.fromtimestamp(record.event.timestamp if record.event else record.create_timestamp,
                                        timezone.utc)
            scope, window = _text(metadata.get("scope")), _text(metadata.get("window"))
            if scope is None:
                scope, partitions = scope_of_run(tags.get(record.run_id, {}), partitions_defs.get(key.asset_key), at)
                window = window or partitions
            out[subject].append(Evaluation(
                check=subject, passed=evaluation.passed, severity=evaluation.severity.value, scope=scope,
                window=window or f"run {record.run_id[:8]}", executed_at=at, run_id=record.run_id,
                description=evaluation.description))
    return out


def live_states(evaluations: Mapping[str, Sequence[Evaluation]], previous: Mapping[str, str]
                ) -> tuple[dict[str, str], dict[str, dict]]:
    """({"asset:check": PASSED / FAILED_WARN / FAILED_ERROR}, details) from each check's newest live
    evaluation; a check with none among its recent results keeps its previous state."""
    states, details = {}, {}
    for check, evals in evaluations.items():
        live = next((e for e in evals if e.live), None)
        if live is None:
            if check in previous:
                states[check] = previous[check]
            continue
        states[check] = live.label
        details[check] = live.details()
    return states, details


def range_subject(check: str, scope: str) -> str:
    return f"{check} [{scope}]"


def short_window(window: str) -> str:
    """`2021-05-14-20:00...2021-05-15-04:00 (9 partitions)` of a `window` text (its label part)."""
    return window.split(": [", 1)[0]


def range_states(evaluations: Mapping[str, Sequence[Evaluation]], previous: Mapping[str, Mapping],
                 now: datetime) -> tuple[dict[str, str], dict[str, dict], dict[str, dict]]:
    """(states, details, entries) of the range subjects after this tick.

    `states`: {subject: the worst label of its failing ranges, or PASSED once every one passed
    again}. `entries`: what the cursor keeps per subject ({"check", "scope", "state", "failing":
    {window: label}, "truncated", "seen"}). `previous` is the cursor's entries of the last tick.
    """
    newest: dict[tuple[str, str], Evaluation] = {}
    for check, evals in evaluations.items():
        for e in evals:  # newest first: the first per (check, window) is its newest
            if not e.live and now - e.executed_at <= RANGE_TTL:
                newest.setdefault((check, e.window), e)
    entries, details = {}, {}
    for subject, entry in previous.items():
        if now - datetime.fromisoformat(entry["seen"]) > RANGE_TTL:
            continue  # forgotten: nothing failed in it for RANGE_TTL
        entries[subject] = {**entry, "failing": dict(entry.get("failing", {}))}
    # A range that passed again (in any run that is not live) no longer fails, wherever it is listed.
    for subject, entry in entries.items():
        for window in list(entry["failing"]):
            again = newest.get((entry["check"], window))
            if again is not None and again.passed:
                del entry["failing"][window]
                details[subject] = {**again.details(), "failing_ranges": len(entry["failing"])}
    # A range whose newest result fails is listed under the scope of that result.
    for (check, window), e in sorted(newest.items(), key=lambda item: item[1].executed_at):
        if e.passed:
            continue
        subject = range_subject(check, e.scope)
        entry = entries.setdefault(subject, {"check": check, "scope": e.scope, "state": None, "failing": {},
                                             "truncated": False, "seen": e.executed_at.isoformat()})
        if window in entry["failing"] or len(entry["failing"]) < MAX_WINDOWS:
            entry["failing"][window] = e.label
        else:
            entry["truncated"] = True  # too many to list: it can no longer resolve, only expire
        entry["seen"] = max(entry["seen"], e.executed_at.isoformat())
        details[subject] = {**e.details(), "failing_ranges": len(entry["failing"])}
    states = {}
    for subject, entry in entries.items():
        state = worst(entry["failing"].values())
        if state == "PASSED" and entry.get("truncated"):
            state = entry.get("state") or "FAILED_WARN"
        states[subject] = entry["state"] = state
        details.setdefault(subject, {"scope": entry["scope"], "failing_ranges": len(entry["failing"])})
        details[subject]["failing"] = [short_window(w) for w in list(entry["failing"])[:10]]
    return states, details, entries


def worst(labels) -> str:
    return max(labels, key=_SEVERITY_RANK.__getitem__, default="PASSED")
