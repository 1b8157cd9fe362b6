"""Asset checks on every dataset, computed from the warehouse.

Checks judge exactly the partitions their run wrote (a ranged backfill: its whole range; gap and
jump checks also the 23 partitions before). Run without a materialization (the `asset_checks_job`,
or from the UI), they judge the partition of the newest row. Every result says what it judged in
its `window` metadata (`<partitions>: [start, end)`; gap and jump checks: `<partitions> and the 23
before: [...)`) and its scope in `scope` (`live`, `backfill <id>` or `range <first>...<last>`, see
`crypto_assets.checks.scope`): the alert sensor resolves an alert only with a result of the same scope.

A check with nothing to judge (no bars in the partitions written, no input record, no news article)
yields no result: Dagster shows it as "Skipped" (the run finished, the check did not evaluate), the
run's log says why ("not evaluated: ..."), and it neither raises nor resolves an alert.

- `schema_matches_code` (blocking): the table has every declared column with its type. A
  renamed column fails it, naming the column, and blocks downstream assets in the same run.
- `has_rows`: the window checked is not empty.
- `symbol_coverage`: share of the coin universe present in the window checked.
- `no_gaps`: bars missing between the first and last bar of each series (listed), over the
  partitions written and the 23 before; not evaluated when the partitions written hold no bar.
- `price_jumps_within_bounds`: bar-to-bar close changes beyond +/-50 % (listed), same window and rule.
- `quarantine_share`: rejected / (rejected + stored) records at most 5 %; not evaluated with no record.
- `sentiment_coverage`: share of news articles of the window that have a sentiment score; not
  evaluated when the window has no article.
- `closes_agree_across_exchanges`, `anomalies_found`: not evaluated with nothing to compare or score.

A dataset's checks run in one op (`<asset>_data_checks`, a subsettable multi-asset check), each
still its own check in the UI.
"""


from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster import DagsterEventType

from crypto_assets.checks.scope import partitions_label, run_partition_keys, scope_of
from crypto_assets.dagster_internals import get_current_datetime  # Dagster's clock: frozen by freeze_time in tests
from crypto_assets.freshness import newest_value
from crypto_assets.sentiment.text import NO_TEXT_TO_SCORE
from crypto_assets.tables import all_tables
from crypto_assets.tables.prices import COIN_UNIVERSE
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.store import SchemaMismatchError

COVERAGE_MIN = 0.8
QUARANTINE_MAX = 0.05
JUMP_MAX = 0.5
SENTIMENT_COVERAGE_MIN = 0.95
RECENT = 24  # partitions examined by gap/jump checks
# No check has an automation condition: Dagster then runs every check of an asset in each run that
# materializes it (automation, schedules and the UI alike), and checks never start runs of their own.

BAR_TABLES = ("ohlcv_bars", "technical_indicators", "ml_features")
SYMBOL_TABLES = ("price_observations", "ohlcv_bars", "technical_indicators", "ml_features")
QUARANTINING = ("price_observations", "news_articles", "social_posts", "sentiment_scores", "macro_series",
                "onchain_metrics", "fear_greed_index")


def partitions_written(context: dg.AssetCheckExecutionContext, key: dg.AssetKey, partitions_def) -> list[str]:
    """The partitions of `key` that this check's own run materialized (none for a checks-only run).

    Read from the run's plan and tags, not its events: a backfill chunk's hundreds of events
    per asset would otherwise be read back and deserialized by every check op of the run.
    """
    if not _asset_step_runs(context, key):
        return []  # a checks-only run, or one that does not materialize `key`
    # The check op runs only after the asset's step yielded `key` (see _asset_step_runs), and a
    # successful step of a partitioned asset writes every partition its run was launched for.
    keys = run_partition_keys(context.run.tags, partitions_def)
    return keys if keys is not None else materialized_in_run(context, key)


def _asset_step_runs(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> bool:
    """Whether this run executes the step that materializes `key`. The check op's input from `key`
    gates it: Dagster skips the check op when that step fails, is skipped (an upstream failure or a
    failed blocking check) or does not yield `key`, so a check op that runs in such a run follows
    a successful materialization. No public API says which steps a run executes."""
    step_context = context.get_step_execution_context()
    executed = set(step_context.execution_plan.step_keys_to_execute)
    asset_layer = step_context.job_def.asset_layer
    return any(asset_layer.get_asset_key_for_node_input(step_context.node_handle, step_input.name) == key
               and any(h.step_key in executed for h in step_input.get_step_output_handle_dependencies())
               for step_input in step_context.step.step_inputs)


def materialized_in_run(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> list[str]:
    """The partitions of `key` this run's events say it materialized: for a run whose tags do not
    name the asset's partitions (another partitioning)."""
    records = context.instance.get_records_for_run(
        run_id=context.run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000).records
    return sorted({r.event_log_entry.dagster_event.partition for r in records
                   if r.event_log_entry.dagster_event.asset_key == key and r.event_log_entry.dagster_event.partition})


class CheckScope:
    """What a dataset's checks judge, worked out once per check op.

    In a run that materialized the asset: exactly the partitions it wrote (a ranged backfill: its
    whole range). Otherwise (a checks-only run): the partition of the newest row at or before now.
    `recent` widens it by the RECENT - 1 partitions before, for checks that look for gaps and jumps.
    Each window is (start, end, label), or None for an unpartitioned table or an empty one.
    `scope` is what the results are about (see `crypto_assets.checks.scope`).
    """

    def __init__(self, context: dg.AssetCheckExecutionContext, key: dg.AssetKey, partitions_def,
                 warehouse: WarehouseResource, spec: TableSpec):
        self.window = self.recent = None
        now = get_current_datetime()
        self.scope = scope_of(context.run.tags, None, None, None, now)  # a backfill's, or live (no window)
        if partitions_def is None or spec.time_column is None:
            return
        written = partitions_written(context, key, partitions_def)
        if written:
            start = partitions_def.time_window_for_partition_key(written[0]).start
            end = partitions_def.time_window_for_partition_key(written[-1]).end
            label = partitions_label(written[0], written[-1], len(written))
            first = written[0]
            keys = partitions_label(written[0], written[-1])
        else:
            try:
                newest = newest_value(warehouse.get(), spec, spec.time_column, get_current_datetime())
            except SchemaMismatchError:  # `schema_matches_code` reports it, naming the columns
                return
            if newest is None:
                return
            first = partitions_def.get_partition_key_for_timestamp(newest.timestamp())
            window = partitions_def.time_window_for_partition_key(first)
            start, end, label, keys = window.start, window.end, f"{first} (newest data)", first
        step = partitions_def.time_window_for_partition_key(first)
        self.window = (start, end, label)
        self.recent = (start - (step.end - step.start) * (RECENT - 1), end, f"{label} and the {RECENT - 1} before")
        self.scope = scope_of(context.run.tags, end, step.end - step.start, keys, now)


class NotEvaluated:
    """A check with nothing to judge: it yields no result (Dagster shows it as skipped), and says why."""

    def __init__(self, reason: str, window):
        self.reason, self.window = reason, window


def _label(window) -> str:
    return window[2] if window else "the table"


def _describe_window(window) -> str:
    return f"{window[2]}: [{window[0].isoformat()}, {window[1].isoformat()})" if window else "all rows"


def make_checks(asset: dg.AssetsDefinition) -> list[dg.AssetChecksDefinition]:
    key = asset.key
    name = key.to_user_string()
    spec: TableSpec | None = all_tables().get(name)
    if spec is None:
        return []
    partitions_def = asset.partitions_def
    checks: list[tuple[dg.AssetCheckSpec, object]] = []

    def check(check_name: str, description: str, blocking: bool = False):
        """Register `fn(scope, warehouse) -> AssetCheckResult` as one of the dataset's checks."""
        def register(fn):
            checks.append((dg.AssetCheckSpec(check_name, asset=key, description=description, blocking=blocking), fn))
            return fn
        return register

    @check("schema_matches_code", "The warehouse table has every column the code declares, with its type.",
           blocking=True)
    def schema_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        diff = warehouse.get().schema_diff(spec)
        return dg.AssetCheckResult(
            passed=diff.ok,
            severity=dg.AssetCheckSeverity.ERROR,
            description=diff.describe(),
            metadata={"missing_columns": list(diff.missing), "mistyped_columns": list(diff.mistyped),
                      "unexpected_columns": list(diff.unexpected), "table_exists": not diff.missing_table,
                      # the schema is the table's; the window is what the run that checked it wrote
                      "window": _describe_window(scope.window)},
        )

    @check("has_rows", "The partitions the run wrote (a checks-only run: the newest partition) hold rows.")
    def rows_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        window = scope.window
        frame = _read(warehouse, spec, window, [spec.primary_key[0]] if spec.primary_key else None)
        return dg.AssetCheckResult(passed=len(frame) > 0, description=f"{len(frame)} rows in {_label(window)}",
                                   metadata={"rows": len(frame), "window": _describe_window(window)})

    if name in SYMBOL_TABLES:

        @check("symbol_coverage", f"At least {COVERAGE_MIN:.0%} of the coin universe is in the partitions checked.")
        def coverage_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult:
            window = scope.window
            present = set(_read(warehouse, spec, window, ["symbol"]).symbol)
            universe = set(_read(warehouse, COIN_UNIVERSE, None, ["symbol"]).symbol)
            share = len(present & universe) / len(universe) if universe else 0.0
            return dg.AssetCheckResult(
                passed=share >= COVERAGE_MIN,
                description=f"{len(present & universe)} of {len(universe)} symbols ({share:.0%}) in {_label(window)}",
                metadata={"coverage": share, "symbols_present": len(present), "universe": len(universe),
                          "missing": dg.MetadataValue.json(sorted(universe - present)[:100]),
                          "window": _describe_window(window)},
            )

    if name in BAR_TABLES:

        @check("no_gaps", "No bar is missing between the first and last bar of each series, over the partitions "
                          "written and the 23 before. Not evaluated when the partitions written hold no bar.")
        def gaps_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult | NotEvaluated:
            window = scope.recent
            cols = ["symbol", "bar_start"] + (["interval"] if "interval" in spec.column_names else [])
            bars = _read(warehouse, spec, window, cols)
            if not _rows_in(bars, "bar_start", scope.window):
                return NotEvaluated(f"no bar in {_label(scope.window)}: nothing to look for gaps in", window)
            missing = find_gaps(bars)
            return dg.AssetCheckResult(
                passed=not missing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"missing_bars": sum(len(v) for v in missing.values()),
                          "gaps": dg.MetadataValue.json({k: v[:50] for k, v in list(missing.items())[:50]}),
                          "window": _describe_window(window)},
            )

    if name == "ohlcv_bars":

        @check("price_jumps_within_bounds", f"No bar-to-bar close change beyond +/-{JUMP_MAX:.0%}, over the "
                                            "partitions written and the 23 before. Not evaluated when the "
                                            "partitions written hold no bar.")
        def jumps_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult | NotEvaluated:
            window = scope.recent
            bars = _read(warehouse, spec, window, ["symbol", "bar_start", "interval", "close"])
            if not _rows_in(bars, "bar_start", scope.window):
                return NotEvaluated(f"no bar in {_label(scope.window)}: no change to judge", window)
            jumps = find_jumps(bars)
            return dg.AssetCheckResult(
                passed=jumps.empty,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"jumps": len(jumps), "window": _describe_window(window),
                          "examples": dg.MetadataValue.json(jumps.head(20).astype(str).to_dict("records"))},
            )

    if name == "exchange_candles":

        @check("closes_agree_across_exchanges", "No bar's close differs by more than 1% between exchanges.")
        def divergence_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult | NotEvaluated:
            from crypto_assets.assets.ingest.exchange_bars import divergence_result  # noqa: PLC0415

            candles = _read(warehouse, spec, scope.window, ["exchange", "symbol", "interval", "bar_start", "close"])
            compared = candles.groupby(["symbol", "interval", "bar_start"]).exchange.nunique() if len(candles) else []
            if not len(candles) or not (compared >= 2).any():
                return NotEvaluated(f"no bar of {_label(scope.window)} came from two exchanges: nothing to compare",
                                    scope.window)
            return divergence_result(candles)

    if name == "market_anomalies":

        @check("anomalies_found", "No anomaly in the hours checked; fails with WARN (an alert) listing those found.")
        def anomalies_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult | NotEvaluated:
            from crypto_assets.assets.enrich.intelligence import anomalies_result  # noqa: PLC0415

            scores = _read(warehouse, spec, scope.window, ["symbol", "kind", "bar_start", "value", "baseline", "z",
                                                           "is_anomaly"])
            if scores.empty:
                return NotEvaluated(f"no score in {_label(scope.window)}", scope.window)
            return anomalies_result(scores, _describe_window(scope.window))

    if name in QUARANTINING:

        @check("quarantine_share", f"At most {QUARANTINE_MAX:.0%} of the input records were rejected.")
        def quarantine_check(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult | NotEvaluated:
            window = scope.window
            stored = len(_read(warehouse, spec, window, [spec.primary_key[0]]))
            q = _read(warehouse, QUARANTINE, window, ["asset", "reason"])
            q = q[q.asset == name]
            total = stored + len(q)
            if not total:
                return NotEvaluated(f"no input record in {_label(window)} (none stored, none rejected)", window)
            share = len(q) / total
            return dg.AssetCheckResult(
                passed=share <= QUARANTINE_MAX,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{len(q)} of {total} records rejected ({share:.1%}) in {_label(window)}",
                metadata={"share": share, "rejected": len(q), "stored": stored,
                          "by_reason": dg.MetadataValue.json(q.reason.value_counts().to_dict()),
                          "window": _describe_window(window)},
            )

    if name == "sentiment_scores":

        @check("sentiment_coverage", f"At least {SENTIMENT_COVERAGE_MIN:.0%} of the window's news articles are scored.")
        def sentiment_coverage(scope: CheckScope, warehouse: WarehouseResource) -> dg.AssetCheckResult | NotEvaluated:
            window = scope.window
            news = _read(warehouse, all_tables()["news_articles"], window, ["article_id"])
            if news.empty:
                return NotEvaluated(f"no news article in {_label(window)}: nothing to score", window)
            scored = _read(warehouse, spec, window, ["item_id"])
            unscored = news.article_id[~news.article_id.isin(scored.item_id)]
            # An article with no text cannot be scored: the sentiment run quarantined it with that
            # reason, so it is accounted for rather than missing.
            no_text = _sentiment_rejects(warehouse, unscored, NO_TEXT_TO_SCORE)
            scorable = len(news) - len(no_text)
            covered = (scorable - (len(unscored) - len(no_text))) / scorable if scorable else 1.0
            return dg.AssetCheckResult(
                passed=covered >= SENTIMENT_COVERAGE_MIN,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"coverage": covered, "articles": len(news), "articles_without_text": len(no_text),
                          "unscored_sample": dg.MetadataValue.json(sorted(set(unscored) - no_text)[:20]),
                          "window": _describe_window(window)},
            )
    return [_one_op(key, partitions_def, spec, checks)]


def _one_op(key: dg.AssetKey, partitions_def, spec: TableSpec, checks: list) -> dg.AssetChecksDefinition:
    """All checks of a dataset in ONE op: the scope (which partitions, read once) is shared, and
    Dagster's per-op cost is paid once per dataset instead of once per check. That cost includes,
    in a ranged or checks-only run, listing every partition key of the asset once (Dagster 1.13
    computes an unused input data version for an unpartitioned check of a partitioned asset);
    checks given the asset's partitions_def would not, but then fail in a run without a partition
    (`asset_checks_job`)."""
    functions = {spec.key: fn for spec, fn in checks}

    @dg.multi_asset_check(
        name=f"{key.to_python_identifier()}_data_checks",
        specs=[spec for spec, _ in checks],
        can_subset=True,
        description=f"Data checks of {key.to_user_string()}: {', '.join(spec.name for spec, _ in checks)}.",
    )
    def data_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        scope = CheckScope(context, key, partitions_def, warehouse, spec)
        for check_key, fn in functions.items():
            if check_key not in context.selected_asset_check_keys:
                continue
            r = fn(scope, warehouse)
            if isinstance(r, NotEvaluated):  # no result: Dagster shows the check as skipped
                context.log.info(f"{key.to_user_string()}:{check_key.name} not evaluated ({scope.scope}; "
                                 f"{_describe_window(r.window)}): {r.reason}")
                continue
            # Every result names what it judged and the scope it is about (the alert sensor's rule).
            metadata = {"window": _describe_window(scope.window), **r.metadata, "scope": scope.scope}
            yield dg.AssetCheckResult(asset_key=key, check_name=check_key.name, passed=r.passed,
                                      severity=r.severity, description=r.description, metadata=metadata)

    return data_checks


def _sentiment_rejects(warehouse: WarehouseResource, article_ids: pd.Series, reason: str) -> set[str]:
    """Which of `article_ids` the sentiment runs quarantined for `reason`."""
    if article_ids.empty:
        return set()
    keys = [f"news|{article_id}" for article_id in article_ids]
    rejected = warehouse.get().read(QUARANTINE, columns=["record_key"], filters={
        "asset": ["sentiment_scores"], "reason": [reason], "record_key": keys})
    return {key.removeprefix("news|") for key in rejected.record_key}


def _rows_in(frame: pd.DataFrame, column: str, window) -> int:
    """How many rows of `frame` have `column` inside `window` (all rows when there is no window)."""
    if window is None or frame.empty:
        return len(frame)
    times = pd.to_datetime(frame[column], utc=True)
    return int(((times >= pd.Timestamp(window[0])) & (times < pd.Timestamp(window[1]))).sum())


def _read(warehouse: WarehouseResource, spec: TableSpec, window, columns) -> pd.DataFrame:
    """The window's rows; none when the table no longer matches the code (the blocking
    `schema_matches_code` check reports that, naming the columns)."""
    bounds = (None, None) if window is None or spec.time_column is None else window[:2]
    try:
        return warehouse.get().read(spec, *bounds, columns=columns)
    except SchemaMismatchError:
        return pd.DataFrame({c: [] for c in columns or spec.column_names})


def find_gaps(bars: pd.DataFrame) -> dict[str, list[str]]:
    """{'SYMBOL interval': [missing bar_start, ...]} between each series' first and last bar."""
    gaps: dict[str, list[str]] = {}
    if bars.empty:
        return gaps
    if "interval" not in bars.columns:
        bars = bars.assign(interval=None)
    for (symbol, interval), series in bars.groupby(["symbol", "interval"], dropna=False):
        times = series.bar_start.sort_values()
        step = pd.Timedelta(interval) if interval else times.diff().min()
        if pd.isna(step) or step <= timedelta(0):
            continue
        expected = pd.date_range(times.iloc[0], times.iloc[-1], freq=step)
        missing = expected.difference(pd.DatetimeIndex(times))
        if len(missing):
            gaps[f"{symbol} {interval or ''}".strip()] = [t.isoformat() for t in missing]
    return gaps


def find_jumps(bars: pd.DataFrame, limit: float = JUMP_MAX) -> pd.DataFrame:
    if bars.empty:
        return bars
    bars = bars.sort_values(["symbol", "interval", "bar_start"])
    change = bars.groupby(["symbol", "interval"]).close.pct_change()
    return bars.assign(change=change)[change.abs() > limit]


def all_data_checks(assets: list) -> list:
    return [check for a in assets if isinstance(a, dg.AssetsDefinition) and len(a.keys) == 1 for check in make_checks(a)]


# Every check of the code location, for a manual run from the UI or the CLI. Not scheduled:
# checks run with each materialization, and staleness is the data_freshness_sensor's job.
CHECKS_JOB = dg.define_asset_job("asset_checks_job", selection=dg.AssetSelection.all_asset_checks())
