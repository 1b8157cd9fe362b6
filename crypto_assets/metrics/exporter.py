"""The platform's Prometheus collector: what the Dagster instance and the warehouse know, at scrape time.

Datasets (every scrape, from the definitions the code location uses):
- data age and freshness state on DATA time: `crypto_assets.freshness.evaluate` (the newest row's
  data time against the policy) and the state the health score uses (`crypto_assets.health`: the
  worse of the recorded and the measured state). A backfill of old hours never lowers the age.
- health score per dataset and overall, failing / never-run checks: `crypto_assets.health.health_report`.
- rows of the newest materialized partition: its materialization's `dagster/row_count`.

Warehouse integrity (every scrape, every table declared in code): `crypto_warehouse_table_damaged`
is 1 for a table whose transaction log or referenced data files are damaged (the check that every
read makes, plus the sizes of the files the log references, plus damage a read of this process met,
e.g. the freshness reads above): reads of it fail until `crypto-assets warehouse repair` (docs/storage.md).

Runs and sources (incrementally: each finished run is read once; the first scrape reads the runs
finished in the last `lookback`, so counters start from there and grow from then on):
- run duration histogram and outcome by job and by asset (the assets a run planned);
- requests per source: the `requests_made` metadata the ingest assets write (the source client's
  per-run counter; a dict names each source, a number counts for the asset's sources together);
- retries and 429s: the client's retry log lines (`<source>: HTTP 429 ...; retry 1/4 in 2.0s`) in
  the run's event log, plus a final `HTTP 429` in the error of a failed step;
- errors: steps failed by a `SourceError` of that source (the client's error after its retries);
- budget left: `max_requests_per_run` (resources/sources.yaml) minus the requests of the latest
  run that reported the source.
The source client's counters live in the run's process only; what a run did not write to the
instance (requests of a step that failed before writing metadata) cannot be counted here.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
from dagster import DagsterEventType
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from crypto_assets.freshness import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, WARN, evaluate
from crypto_assets.health import Dataset, datasets_in, health_report
from crypto_assets.health.score import NOT_CONFIGURED
from crypto_assets.health.states import utcnow
from crypto_assets.sources.client import SourceSpec

FRESHNESS_STATES = (PASS, WARN, FAIL, UNKNOWN, NOT_APPLICABLE, NOT_CONFIGURED)
RUN_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
SOURCE_ERROR_CLASSES = frozenset({"SourceError", "SourceBudgetExceeded"})
# The source client's retry line (crypto_assets/sources/client.py: SourceClient.get).
RETRY_LINE = re.compile(
    r"^(?P<source>[\w.-]+): (?:HTTP (?P<status>\d{3})\b.*|(?P<exc>\w+): .*); retry \d+/\d+ in [\d.]+s$", re.DOTALL)
DEFAULT_LOOKBACK = timedelta(hours=24)


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


@dataclass
class _Histogram:
    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def as_buckets(self) -> list[tuple[str, float]]:
        counts = self.counts or [0] * len(self.buckets)
        return [*[(repr(float(b)), c) for b, c in zip(self.buckets, counts)], ("+Inf", self.count)]


@dataclass
class RunFacts:
    """What one finished run contributes (read once, from its events)."""

    job: str
    status: str
    duration_s: float | None
    assets: tuple[str, ...]
    requests: dict[str, int] = field(default_factory=dict)  # source label -> requests in this run
    retries: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, reason) -> retries
    rate_limited: dict[str, int] = field(default_factory=dict)  # source -> 429 responses
    errors: dict[str, int] = field(default_factory=dict)  # source -> steps failed by its SourceError
    rows_written: dict[str, int] = field(default_factory=dict)  # dataset -> rows
    finished_at: float = 0.0


def _metadata_value(value):
    return getattr(value, "value", value)


def _error_chain(error) -> Iterable:
    seen = 0
    while error is not None and seen < 20:
        yield error
        error = error.cause or error.context
        seen += 1


def source_of_error(error, sources: Iterable[str]) -> tuple[str, str] | None:
    """(source, message) of the first SourceError in a step failure's error chain."""
    known = set(sources)
    for link in _error_chain(error):
        if link.cls_name in SOURCE_ERROR_CLASSES:
            # "crypto_assets.sources.client.SourceError: coingecko: failed after 5 attempts; ..."
            text = re.sub(rf"^(?:[\w.]+\.)?{link.cls_name}: ", "", link.message.strip())
            name = text.split(":", 1)[0].strip()
            if name in known:
                return name, text
    return None


def read_run(instance: dg.DagsterInstance, record, asset_sources: Mapping[str, tuple[str, ...]],
             sources: Iterable[str]) -> RunFacts:
    run = record.dagster_run
    duration = (record.end_time - record.start_time) if record.start_time and record.end_time else None
    events = instance.get_records_for_run(
        run.run_id,
        of_type={DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_MATERIALIZATION,
                 DagsterEventType.STEP_FAILURE},
    ).records
    planned, requests, rows = set(), defaultdict(int), defaultdict(int)
    facts = RunFacts(job=run.job_name, status=run.status.value, duration_s=duration, assets=(),
                     finished_at=record.end_time or record.update_timestamp.timestamp())
    errors, limited = defaultdict(int), defaultdict(int)
    for rec in events:
        event = rec.event_log_entry.dagster_event
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            planned.add(event.asset_key.to_user_string())
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            asset = materialization.asset_key.to_user_string()
            planned.add(asset)
            meta = materialization.metadata
            row_count = _metadata_value(meta.get("dagster/row_count"))
            if isinstance(row_count, int):
                rows[asset] += row_count
            made = _metadata_value(meta.get("requests_made"))
            if isinstance(made, Mapping):
                per_source = {str(k): v for k, v in made.items() if isinstance(v, int)}
            elif isinstance(made, int) and asset_sources.get(asset):
                per_source = {"+".join(asset_sources[asset]): made}
            else:
                per_source = {}
            for source, count in per_source.items():
                # The client counts per run (cumulatively): the run's count is the largest reported.
                requests[source] = max(requests[source], count)
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            found = source_of_error(event.step_failure_data.error, sources)
            if found:
                source, message = found
                errors[source] += 1
                if "HTTP 429" in message:
                    limited[source] += 1
    retries = defaultdict(int)
    for entry in instance.all_logs(run.run_id):
        if entry.dagster_event is not None or not entry.user_message:
            continue
        match = RETRY_LINE.match(entry.user_message.strip())
        if not match or match["source"] not in set(sources):
            continue
        reason = match["status"] or "transport"
        retries[(match["source"], reason)] += 1
        if reason == "429":
            limited[match["source"]] += 1
    facts.assets = tuple(sorted(planned))
    facts.requests, facts.rows_written = dict(requests), dict(rows)
    facts.errors, facts.rate_limited, facts.retries = dict(errors), dict(limited), dict(retries)
    return facts


class PlatformCollector(Collector):
    """Registered in a `CollectorRegistry`; `collect()` reads the instance and the warehouse."""

    def __init__(self, instance: dg.DagsterInstance, datasets: Sequence[Dataset], warehouse,
                 partitions: Mapping[str, object] | None = None,
                 asset_sources: Mapping[str, tuple[str, ...]] | None = None,
                 source_specs: Mapping[str, SourceSpec] | None = None,
                 lookback: timedelta = DEFAULT_LOOKBACK, max_runs_per_scrape: int = 500,
                 min_interval_s: float = 0.0, clock: Callable[[], datetime] = utcnow):
        self.instance, self.datasets, self.warehouse = instance, list(datasets), warehouse
        self.partitions = dict(partitions or {})
        self.asset_sources = dict(asset_sources or {})
        self.source_specs = dict(source_specs or {})
        self.lookback, self.max_runs = lookback, max_runs_per_scrape
        self.min_interval_s, self.clock = min_interval_s, clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # run id -> its update time
        self._cursor: datetime | None = None
        self._runs = defaultdict(lambda: _Histogram(RUN_DURATION_BUCKETS))  # (job, status)
        self._asset_runs = defaultdict(lambda: _Histogram(RUN_DURATION_BUCKETS))  # (dataset, status)
        self._requests: dict[str, int] = defaultdict(int)
        self._retries: dict[tuple[str, str], int] = defaultdict(int)
        self._limited: dict[str, int] = defaultdict(int)
        self._errors: dict[str, int] = defaultdict(int)
        self._rows: dict[str, int] = defaultdict(int)
        self._last_run_requests: dict[str, tuple[float, int]] = {}  # source -> (finished at, requests)
        self._cached: list | None = None
        self._cached_at = float("-inf")
        self.last_success: dict[str, bool] = {}

    def describe(self):
        return []  # not known without reading the instance: the registry must not call collect() early

    def collect(self):
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at < self.min_interval_s:
                return list(self._cached)
            families = []
            # datasets first: its reads remember the damage they meet, which the warehouse part reports
            for part, build in (("datasets", self._dataset_families), ("warehouse", self._warehouse_families),
                                ("runs", self._run_families)):
                started = time.perf_counter()
                try:
                    families += build()
                    ok = True
                except Exception:  # one unreadable part must not hide the others
                    import logging

                    logging.getLogger(__name__).exception("metrics: cannot collect %s", part)
                    ok = False
                self.last_success[part] = ok
                self._self_metrics(families, part, ok, time.perf_counter() - started)
            self._cached, self._cached_at = families, time.monotonic()
            return list(families)

    # -- self -----------------------------------------------------------------------------------

    def _self_metrics(self, families: list, part: str, ok: bool, took: float) -> None:
        up = GaugeMetricFamily("crypto_exporter_collect_success", "1 when the exporter could read this part "
                               "(datasets: instance + warehouse; runs: event log) at the last scrape", labels=["part"])
        up.add_metric([part], 1.0 if ok else 0.0)
        duration = GaugeMetricFamily("crypto_exporter_collect_duration_seconds",
                                     "Seconds the last collection of this part took", labels=["part"])
        duration.add_metric([part], took)
        families += [up, duration]

    # -- datasets -------------------------------------------------------------------------------

    def _dataset_families(self) -> list:
        now = self.clock()
        report = health_report(self.instance, self.datasets, now=now, warehouse=self.warehouse)
        health = {d.asset: d for d in report.datasets}
        age = GaugeMetricFamily("crypto_dataset_data_age_seconds",
                                "Seconds since the newest data in the warehouse (data time: observed_at, bar close, "
                                "published_at, available_at), not since the last run", labels=["dataset"])
        newest = GaugeMetricFamily("crypto_dataset_newest_data_timestamp_seconds",
                                   "Unix time of the newest data in the warehouse", labels=["dataset"])
        warn_after = GaugeMetricFamily("crypto_dataset_freshness_warn_after_seconds",
                                       "The dataset's FreshnessPolicy warn window", labels=["dataset"])
        fail_after = GaugeMetricFamily("crypto_dataset_freshness_fail_after_seconds",
                                       "The dataset's FreshnessPolicy fail window", labels=["dataset"])
        state = GaugeMetricFamily("crypto_dataset_freshness_state",
                                  "1 for the dataset's freshness state on data time (the one the health score uses: "
                                  "the worse of the state recorded in Dagster and the one measured now), else 0",
                                  labels=["dataset", "state"])
        score = GaugeMetricFamily("crypto_dataset_health_score", "Health score 0-100 of the dataset",
                                  labels=["dataset"])
        checks = GaugeMetricFamily("crypto_dataset_checks", "Asset checks defined on the dataset", labels=["dataset"])
        failing = GaugeMetricFamily("crypto_dataset_failing_checks",
                                    "Checks whose latest completed result failed", labels=["dataset", "severity"])
        never = GaugeMetricFamily("crypto_dataset_checks_never_run", "Checks that never completed",
                                  labels=["dataset"])
        rows = GaugeMetricFamily("crypto_dataset_newest_partition_rows",
                                 "dagster/row_count of the newest materialized partition (non-partitioned: the "
                                 "latest materialization)", labels=["dataset"])
        partition_start = GaugeMetricFamily("crypto_dataset_newest_partition_start_timestamp_seconds",
                                            "Start of the newest materialized partition", labels=["dataset"])
        for dataset in self.datasets:
            name = dataset.name
            measured = evaluate(self.warehouse, name, dataset.freshness_policy, now)
            if measured.lag is not None:
                age.add_metric([name], measured.lag.total_seconds())
                newest.add_metric([name], measured.data_time.timestamp())
            if measured.warn_after is not None:
                warn_after.add_metric([name], measured.warn_after.total_seconds())
            if measured.fail_after is not None:
                fail_after.add_metric([name], measured.fail_after.total_seconds())
            shown = health[name]
            for candidate in FRESHNESS_STATES:
                state.add_metric([name, candidate], 1.0 if shown.freshness == candidate else 0.0)
            if shown.score is not None:  # None: an optional source not set up, not scored
                score.add_metric([name], shown.score)
            checks.add_metric([name], shown.checks_total)
            by_severity = defaultdict(int)
            for label in shown.failing_checks:
                by_severity["WARN" if label.endswith("(WARN)") else "ERROR"] += 1
            for severity in ("ERROR", "WARN"):
                failing.add_metric([name, severity], by_severity[severity])
            never.add_metric([name], len(shown.never_run_checks))
            newest_partition = self._newest_partition(dataset)
            if newest_partition is not None:
                start, count = newest_partition
                if count is not None:
                    rows.add_metric([name], count)
                if start is not None:
                    partition_start.add_metric([name], start)
        overall = GaugeMetricFamily("crypto_platform_health_score",
                                    "Overall health score 0-100: the plain mean over every dataset")
        overall.add_metric([], report.score)
        return [age, newest, warn_after, fail_after, state, score, overall, checks, failing, never, rows,
                partition_start]

    def _newest_partition(self, dataset: Dataset) -> tuple[float | None, int | None] | None:
        partitions_def = self.partitions.get(dataset.name)
        if partitions_def is None:
            event = self.instance.get_latest_materialization_event(dataset.key)
            if event is None or event.asset_materialization is None:
                return None
            count = _metadata_value(event.asset_materialization.metadata.get("dagster/row_count"))
            return None, count if isinstance(count, int) else None
        keys = self.instance.get_materialized_partitions(dataset.key)
        if not keys:
            return None
        starts = {}
        for key in keys:
            try:
                starts[key] = partitions_def.time_window_for_partition_key(key).start.timestamp()
            except Exception:  # a key of an older partition set: not this definition's
                continue
        if not starts:
            return None
        key = max(starts, key=starts.get)
        found = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dataset.key, asset_partitions=[key]), limit=1).records
        count = None
        if found and found[0].asset_materialization is not None:
            value = _metadata_value(found[0].asset_materialization.metadata.get("dagster/row_count"))
            count = value if isinstance(value, int) else None
        return starts[key], count

    # -- warehouse integrity --------------------------------------------------------------------

    def _warehouse_families(self) -> list:
        from crypto_assets.tables import all_tables
        from crypto_assets.warehouse.store import WarehouseDamaged

        damaged = GaugeMetricFamily("crypto_warehouse_table_damaged",
                                    "1 when the table's transaction log or a data file it references is damaged "
                                    "(missing, empty, truncated, unreadable): its reads fail until `crypto-assets "
                                    "warehouse repair TABLE`; `crypto-assets warehouse check` names the damage",
                                    labels=["table"])
        count = GaugeMetricFamily("crypto_warehouse_damaged_tables", "Tables whose storage is damaged")
        total = 0
        for name, spec in all_tables().items():
            try:
                bad = bool(self.warehouse.damage(spec, footers=True))
            except WarehouseDamaged:
                bad = True
            damaged.add_metric([name], 1.0 if bad else 0.0)
            total += bad
        count.add_metric([], total)
        return [damaged, count]

    # -- runs and sources -----------------------------------------------------------------------

    def _read_new_runs(self) -> None:
        now = self.clock()
        since = self._cursor or (now - self.lookback)
        records = self.instance.get_run_records(
            filters=dg.RunsFilter(statuses=list(FINISHED), updated_after=since - timedelta(minutes=5)),
            limit=self.max_runs, order_by="update_timestamp", ascending=True,
        )
        sources = list(self.source_specs)
        for record in records:
            run_id = record.dagster_run.run_id
            if run_id in self._seen:
                continue
            facts = read_run(self.instance, record, self.asset_sources, sources)
            self._add(facts)
            self._seen[run_id] = record.update_timestamp.timestamp()
            self._cursor = max(self._cursor or record.update_timestamp, record.update_timestamp)
        if self._cursor is None:
            self._cursor = since
        horizon = self._cursor.timestamp() - 3600
        self._seen = {k: v for k, v in self._seen.items() if v >= horizon}

    def _add(self, facts: RunFacts) -> None:
        if facts.duration_s is not None:
            self._runs[(facts.job, facts.status)].observe(facts.duration_s)
            for asset in facts.assets:
                self._asset_runs[(asset, facts.status)].observe(facts.duration_s)
        for source, count in facts.requests.items():
            self._requests[source] += count
            previous = self._last_run_requests.get(source)
            if previous is None or facts.finished_at >= previous[0]:
                self._last_run_requests[source] = (facts.finished_at, count)
        for key, count in facts.retries.items():
            self._retries[key] += count
        for source, count in facts.rate_limited.items():
            self._limited[source] += count
        for source, count in facts.errors.items():
            self._errors[source] += count
        for dataset, count in facts.rows_written.items():
            self._rows[dataset] += count

    def _run_families(self) -> list:
        self._read_new_runs()
        runs = HistogramMetricFamily("crypto_run_duration_seconds",
                                     "Wall time of finished Dagster runs, by job and outcome (SUCCESS, FAILURE, "
                                     "CANCELED); _count is the number of runs", labels=["job", "status"])
        for (job, status), hist in sorted(self._runs.items()):
            runs.add_metric([job, status], hist.as_buckets(), hist.total)
        asset_runs = HistogramMetricFamily("crypto_asset_run_duration_seconds",
                                           "Wall time of finished runs that planned this dataset, by outcome",
                                           labels=["dataset", "status"])
        for (asset, status), hist in sorted(self._asset_runs.items()):
            asset_runs.add_metric([asset, status], hist.as_buckets(), hist.total)
        in_progress = GaugeMetricFamily("crypto_runs_in_progress", "Runs started and not finished")
        in_progress.add_metric([], self.instance.get_runs_count(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])))
        rows = CounterMetricFamily("crypto_dataset_rows_written", "Rows written (dagster/row_count of each "
                                   "materialization) by finished runs", labels=["dataset"])
        for dataset in sorted({d.name for d in self.datasets} | set(self._rows)):
            rows.add_metric([dataset], self._rows.get(dataset, 0))

        names = sorted(set(self.source_specs) | set(self._requests))
        requests = CounterMetricFamily("crypto_source_requests", "HTTP requests to the source, from the "
                                       "requests_made metadata of materializations (a name like guardian+rss: an "
                                       "asset that reports its sources together)", labels=["source"])
        for name in names:
            requests.add_metric([name], self._requests.get(name, 0))
        retries = CounterMetricFamily("crypto_source_retries", "Retried requests (the client's retry log lines), "
                                      "by reason: HTTP status or transport", labels=["source", "reason"])
        for (source, reason), count in sorted(self._retries.items()):
            retries.add_metric([source, reason], count)
        limited = CounterMetricFamily("crypto_source_rate_limited_responses", "HTTP 429 responses from the source",
                                      labels=["source"])
        errors = CounterMetricFamily("crypto_source_errors", "Steps failed by the source (a SourceError after the "
                                     "client's retries)", labels=["source"])
        cap = GaugeMetricFamily("crypto_source_request_budget_per_run",
                                "max_requests_per_run of the source (resources/sources.yaml)", labels=["source"])
        left = GaugeMetricFamily("crypto_source_request_budget_remaining",
                                 "Requests the latest run that reported this source had left of its per-run budget",
                                 labels=["source"])
        for name, spec in sorted(self.source_specs.items()):
            limited.add_metric([name], self._limited.get(name, 0))
            errors.add_metric([name], self._errors.get(name, 0))
            if spec.max_requests_per_run is not None:
                cap.add_metric([name], spec.max_requests_per_run)
                if name in self._last_run_requests:
                    left.add_metric([name], max(0, spec.max_requests_per_run - self._last_run_requests[name][1]))
        return [runs, asset_runs, in_progress, rows, requests, retries, limited, errors, cap, left]


def asset_sources_of(defs: dg.Definitions) -> dict[str, tuple[str, ...]]:
    """Asset name -> the HTTP sources it calls (its resources that are source clients)."""
    from crypto_assets.sources.catalog import HttpSource

    resources = defs.resources or {}
    by_key = {key: res.source_name for key, res in resources.items() if isinstance(res, HttpSource)}
    out = {}
    for assets_def in defs.assets or ():
        if not isinstance(assets_def, dg.AssetsDefinition):
            continue
        used = tuple(sorted({by_key[k] for k in assets_def.required_resource_keys if k in by_key}))
        if used:
            for key in assets_def.keys:
                out[key.to_user_string()] = used
    return out


def partitions_of(asset_graph) -> dict[str, object]:
    """Asset name -> its time-window partitions definition (others are left out)."""
    out = {}
    for node in asset_graph.asset_nodes:
        if isinstance(node.partitions_def, dg.TimeWindowPartitionsDefinition):
            out[node.key.to_user_string()] = node.partitions_def
    return out


def collector_for(defs: dg.Definitions, instance: dg.DagsterInstance, warehouse, **kwargs) -> PlatformCollector:
    """A collector for the datasets of `defs` (as `crypto-assets health` scores them)."""
    from crypto_assets.sources.catalog import source_specs

    graph = defs.resolve_asset_graph()
    return PlatformCollector(instance, datasets_in(graph), warehouse, partitions=partitions_of(graph),
                             asset_sources=asset_sources_of(defs), source_specs=source_specs(), **kwargs)
