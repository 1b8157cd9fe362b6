"""The 0-100 health score: per dataset from its freshness and its checks, then averaged.

Rules (docs/operations.md):
- freshness part, on DATA time (the newest row's age against the asset's policy, see
  `crypto_assets.freshness`), the worse of the state Dagster shows and the one measured now:
  PASS 100, WARN 50, FAIL 0; UNKNOWN (no data yet, warehouse unreadable) 0; an asset without a
  policy scores 100 once materialized, 0 before.
- checks part: each check's latest completed result: passed 100, failed with WARN severity 50,
  failed with ERROR severity 0, never run 0. The part is their mean.
- dataset score: mean of the two parts (freshness only when the asset has no checks).
- overall score: the plain mean over EVERY dataset. Nothing failed or unknown is dropped from
  the average: a broken or never-built dataset pulls the score down.
Bands: >= 95 ok, >= 80 info, >= 60 warning, below 60 critical.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import dagster as dg

from crypto_assets.freshness import format_age
from crypto_assets.health.states import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    UNKNOWN,
    WARN,
    CheckState,
    Dataset,
    as_datasets,
    check_states,
    data_freshness,
    freshness_of,
    last_materialized_at,
    recorded_freshness_states,
    utcnow,
)
from crypto_assets.warehouse.store import Warehouse

FRESHNESS_POINTS = {PASS: 100.0, WARN: 50.0, FAIL: 0.0, UNKNOWN: 0.0}
CHECK_POINTS = {"PASSED": 100.0, "FAILED_WARN": 50.0, "FAILED_ERROR": 0.0, "NEVER_RUN": 0.0}
NOT_CONFIGURED = "NOT_CONFIGURED"
BANDS = ((95.0, "ok"), (80.0, "info"), (60.0, "warning"), (float("-inf"), "critical"))
CRITICAL_BELOW = 60.0


def band(score: float) -> str:
    return next(name for floor, name in BANDS if score >= floor)


def freshness_points(state: str, materialized: bool) -> float:
    if state == NOT_APPLICABLE:
        return 100.0 if materialized else 0.0
    return FRESHNESS_POINTS.get(state, 0.0)


def dataset_score(freshness: float, checks: Sequence[float]) -> float:
    if not checks:
        return freshness
    return (freshness + sum(checks) / len(checks)) / 2


@dataclass(frozen=True)
class DatasetHealth:
    asset: str
    group: str | None
    score: float | None  # None: an optional source not set up (not scored)
    band: str
    freshness: str
    freshness_source: str  # recorded (the UI's state) / data (measured now) / none
    last_materialized_at: datetime | None  # when a run last wrote it (any partition)
    data_time: datetime | None  # newest data in the warehouse: what freshness measures
    data_age: timedelta | None
    failing_checks: tuple[str, ...] = ()
    never_run_checks: tuple[str, ...] = ()
    checks_total: int = 0
    not_configured: str | None = None  # an optional source not set up: what it needs (not scored)


@dataclass(frozen=True)
class HealthReport:
    score: float
    band: str
    generated_at: datetime
    datasets: tuple[DatasetHealth, ...] = field(default_factory=tuple)

    @property
    def critical(self) -> bool:
        return self.score < CRITICAL_BELOW

    def failing(self) -> list[DatasetHealth]:
        return [d for d in self.datasets if d.band != "ok" and not d.not_configured]

    def rows(self) -> list[list[str]]:
        header = ["dataset", "score", "band", "freshness", "data age", "newest data", "last run", "checks ok",
                  "failing checks"]
        body = []
        for d in self.datasets:
            if d.not_configured:
                body.append([d.asset, "-", d.band, d.freshness, "-", "-", "never", "-", d.not_configured])
                continue
            problems = list(d.failing_checks)
            if d.never_run_checks:
                problems.append(f"{len(d.never_run_checks)} never run")
            passed = d.checks_total - len(d.failing_checks) - len(d.never_run_checks)
            body.append([d.asset, f"{d.score:.0f}", d.band, d.freshness, format_age(d.data_age),
                         f"{d.data_time:%Y-%m-%d %H:%M}" if d.data_time else "-",
                         f"{d.last_materialized_at:%Y-%m-%d %H:%M}" if d.last_materialized_at else "never",
                         f"{passed}/{d.checks_total}" if d.checks_total else "-",
                         ", ".join(problems) or "-"])
        return [header, *body]

    def to_markdown(self) -> str:
        header, *body = self.rows()
        lines = [f"**Health {self.score:.1f} / 100 ({self.band})** at {self.generated_at:%Y-%m-%d %H:%M} UTC", "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
        return "\n".join(lines)

    def to_text(self) -> str:
        rows = self.rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        out = [f"Health {self.score:.1f} / 100 ({self.band}) at {self.generated_at:%Y-%m-%d %H:%M} UTC", ""]
        for n, row in enumerate(rows):
            out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        return "\n".join(out)

    def as_dict(self) -> dict:
        def plain(value):
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, timedelta):
                return value.total_seconds()
            if isinstance(value, tuple):
                return list(value)
            return value

        return {
            "score": self.score, "band": self.band, "generated_at": self.generated_at.isoformat(),
            "datasets": [{k: plain(v) for k, v in asdict(d).items()} for d in self.datasets],
        }


def _check_parts(dataset: Dataset, checks: dict[dg.AssetCheckKey, CheckState]):
    points, failing, never_run = [], [], []
    for key in dataset.check_keys:
        state = checks.get(key)
        label = state.label if state else "NEVER_RUN"
        points.append(CHECK_POINTS[label])
        if state is None:
            never_run.append(key.name)
        elif not state.passed:
            failing.append(f"{key.name} ({state.severity})")
    return points, tuple(failing), tuple(never_run)


def health_report(instance: dg.DagsterInstance, asset_keys: Iterable[Dataset | dg.AssetKey | str],
                  now: datetime | None = None, warehouse: Warehouse | None = None) -> HealthReport:
    """Score the given datasets from what `instance` and the warehouse know.

    Pass `Dataset`s (see `datasets_in(defs.resolve_asset_graph())`) to include each asset's
    checks and freshness policy (judged on the newest data in `warehouse`, default: the
    configured one); bare asset keys are scored on materialization and the recorded state only.
    """
    now = now or utcnow()
    datasets = as_datasets(asset_keys)
    keys = [d.key for d in datasets]
    materialized = last_materialized_at(instance, datasets)
    data = data_freshness(datasets, now, warehouse)
    freshness = freshness_of(datasets, recorded_freshness_states(instance, keys), data, materialized)
    checks = check_states(instance, [k for d in datasets for k in d.check_keys])

    rows, not_configured = [], []
    for dataset in datasets:
        if dataset.optional_source and (dataset.key not in materialized or not dataset.configured):
            # An optional source nobody set up is listed, not scored, whatever old rows exist (the
            # demo's replay builds social_posts): once configured and built it counts.
            not_configured.append(DatasetHealth(
                asset=dataset.name, group=dataset.group, score=None, band="not configured",
                freshness=NOT_CONFIGURED, freshness_source="none", last_materialized_at=None, data_time=None,
                data_age=None, checks_total=len(dataset.check_keys), not_configured=dataset.optional_source,
            ))
            continue
        state, source = freshness[dataset.key]
        measured = data.get(dataset.key)
        check_points, failing, never_run = _check_parts(dataset, checks)
        score = round(dataset_score(freshness_points(state, dataset.key in materialized), check_points), 1)
        rows.append(DatasetHealth(
            asset=dataset.name, group=dataset.group, score=score, band=band(score),
            freshness=state, freshness_source=source,
            last_materialized_at=materialized.get(dataset.key),
            data_time=measured.data_time if measured else None, data_age=measured.lag if measured else None,
            failing_checks=failing, never_run_checks=never_run, checks_total=len(dataset.check_keys),
        ))
    overall = round(sum(r.score for r in rows) / len(rows), 1) if rows else 0.0
    ordered = tuple(sorted([*rows, *not_configured], key=lambda r: r.asset))
    return HealthReport(score=overall, band=band(overall), generated_at=now, datasets=ordered)
