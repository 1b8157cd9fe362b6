"""Asset checks on every dataset, computed from the warehouse.

Each check looks at the asset's latest materialized partition (and the 24 partitions up to it
for gap and jump checks), so it is meaningful both right after a materialization (it runs in
the same run) and from the periodic check schedule.

- `schema_matches_code` (blocking): the table has every declared column with its type. A
  renamed column fails it, naming the column, and blocks downstream assets in the same run.
- `has_rows`: the latest partition window is not empty.
- `symbol_coverage`: share of the coin universe present in the latest partition.
- `no_gaps`: bars missing between the first and last bar of each series (listed).
- `price_jumps_within_bounds`: bar-to-bar close changes beyond +/-50 % (listed).
- `quarantine_share`: rejected / (rejected + stored) records at most 5 %.
- `sentiment_coverage`: share of news articles of the window that have a sentiment score.

A dataset's checks run in one op (`<asset>_data_checks`, a subsettable multi-asset check), each
still its own check in the UI.
"""


from datetime import timedelta

import dagster as dg
import pandas as pd

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

BAR_TABLES = ("ohlcv_bars", "technical_indicators", "ml_features")
SYMBOL_TABLES = ("price_observations", "ohlcv_bars", "technical_indicators", "ml_features")
QUARANTINING = ("price_observations", "news_articles", "social_posts", "sentiment_scores", "macro_series",
                "onchain_metrics")


def latest_window(context: dg.AssetCheckExecutionContext, key: dg.AssetKey, partitions_def, span: int = 1):
    """(start, end) of the latest materialized partition (widened to `span` partitions), or None."""
    if partitions_def is None:
        return None
    keys = context.instance.get_materialized_partitions(key)
    if not keys:
        return None
    latest = max(keys, key=lambda k: partitions_def.time_window_for_partition_key(k).start)
    window = partitions_def.time_window_for_partition_key(latest)
    step = window.end - window.start
    return window.start - step * (span - 1), window.end


def _describe_window(window) -> str:
    return f"[{window[0].isoformat()}, {window[1].isoformat()})" if window else "all rows"


def make_checks(asset: dg.AssetsDefinition) -> list[dg.AssetChecksDefinition]:
    key = asset.key
    name = key.to_user_string()
    spec: TableSpec | None = all_tables().get(name)
    if spec is None:
        return []
    partitions_def = asset.partitions_def
    checks: list[tuple[dg.AssetCheckSpec, object]] = []

    def check(check_name: str, description: str, blocking: bool = False):
        """Register `fn(context, warehouse) -> AssetCheckResult` as one of the dataset's checks."""
        def register(fn):
            checks.append((dg.AssetCheckSpec(check_name, asset=key, description=description, blocking=blocking), fn))
            return fn
        return register

    @check("schema_matches_code", "The warehouse table has every column the code declares, with its type.",
           blocking=True)
    def schema_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        diff = warehouse.get().schema_diff(spec)
        return dg.AssetCheckResult(
            passed=diff.ok,
            severity=dg.AssetCheckSeverity.ERROR,
            description=diff.describe(),
            metadata={"missing_columns": list(diff.missing), "mistyped_columns": list(diff.mistyped),
                      "unexpected_columns": list(diff.unexpected), "table_exists": not diff.missing_table},
        )

    @check("has_rows", "The latest partition (or the table) is not empty.")
    def rows_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        window = latest_window(context, key, partitions_def)
        frame = _read(warehouse, spec, window, [spec.primary_key[0]] if spec.primary_key else None)
        return dg.AssetCheckResult(passed=len(frame) > 0, metadata={"rows": len(frame), "window": _describe_window(window)})

    if name in SYMBOL_TABLES:

        @check("symbol_coverage", f"At least {COVERAGE_MIN:.0%} of the coin universe is in the latest partition.")
        def coverage_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
            window = latest_window(context, key, partitions_def)
            present = set(_read(warehouse, spec, window, ["symbol"]).symbol)
            universe = set(_read(warehouse, COIN_UNIVERSE, None, ["symbol"]).symbol)
            share = len(present & universe) / len(universe) if universe else 0.0
            return dg.AssetCheckResult(
                passed=share >= COVERAGE_MIN,
                metadata={"coverage": share, "symbols_present": len(present), "universe": len(universe),
                          "missing": dg.MetadataValue.json(sorted(universe - present)[:100]),
                          "window": _describe_window(window)},
            )

    if name in BAR_TABLES:

        @check("no_gaps", "No bar is missing between the first and last bar of each series (last 24 h).")
        def gaps_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
            window = latest_window(context, key, partitions_def, span=RECENT)
            cols = ["symbol", "bar_start"] + (["interval"] if "interval" in spec.column_names else [])
            missing = find_gaps(_read(warehouse, spec, window, cols))
            return dg.AssetCheckResult(
                passed=not missing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"missing_bars": sum(len(v) for v in missing.values()),
                          "gaps": dg.MetadataValue.json({k: v[:50] for k, v in list(missing.items())[:50]}),
                          "window": _describe_window(window)},
            )

    if name == "ohlcv_bars":

        @check("price_jumps_within_bounds", f"No bar-to-bar close change beyond +/-{JUMP_MAX:.0%} (last 24 h).")
        def jumps_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
            window = latest_window(context, key, partitions_def, span=RECENT)
            jumps = find_jumps(_read(warehouse, spec, window, ["symbol", "bar_start", "interval", "close"]))
            return dg.AssetCheckResult(
                passed=jumps.empty,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"jumps": len(jumps),
                          "examples": dg.MetadataValue.json(jumps.head(20).astype(str).to_dict("records"))},
            )

    if name in QUARANTINING:

        @check("quarantine_share", f"At most {QUARANTINE_MAX:.0%} of the input records were rejected.")
        def quarantine_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
            window = latest_window(context, key, partitions_def, span=RECENT)
            stored = len(_read(warehouse, spec, window, [spec.primary_key[0]]))
            q = _read(warehouse, QUARANTINE, window, ["asset", "reason"])
            q = q[q.asset == name]
            total = stored + len(q)
            share = len(q) / total if total else 0.0
            return dg.AssetCheckResult(
                passed=share <= QUARANTINE_MAX,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"share": share, "rejected": len(q), "stored": stored,
                          "by_reason": dg.MetadataValue.json(q.reason.value_counts().to_dict())},
            )

    if name == "sentiment_scores":

        @check("sentiment_coverage", f"At least {SENTIMENT_COVERAGE_MIN:.0%} of the window's news articles are scored.")
        def sentiment_coverage(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
            window = latest_window(context, key, partitions_def, span=RECENT)
            news = _read(warehouse, all_tables()["news_articles"], window, ["article_id"])
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
    return [_one_op(key, checks)]


def _one_op(key: dg.AssetKey, checks: list) -> dg.AssetChecksDefinition:
    """All checks of a dataset in ONE op. Dagster lists every partition of a partitioned asset
    for each check op it runs outside a partitioned run (~0.6-1 s for the hourly assets since
    2021); one op per dataset pays that once instead of once per check."""
    functions = {spec.key: fn for spec, fn in checks}

    @dg.multi_asset_check(
        name=f"{key.to_python_identifier()}_data_checks",
        specs=[spec for spec, _ in checks],
        can_subset=True,
        description=f"Data checks of {key.to_user_string()}: {', '.join(spec.name for spec, _ in checks)}.",
    )
    def data_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        for check_key, fn in functions.items():
            if check_key not in context.selected_asset_check_keys:
                continue
            r = fn(context, warehouse)
            yield dg.AssetCheckResult(asset_key=key, check_name=check_key.name, passed=r.passed,
                                      severity=r.severity, description=r.description, metadata=r.metadata)

    return data_checks


def _sentiment_rejects(warehouse: WarehouseResource, article_ids: pd.Series, reason: str) -> set[str]:
    """Which of `article_ids` the sentiment runs quarantined for `reason`."""
    if article_ids.empty:
        return set()
    keys = [f"news|{article_id}" for article_id in article_ids]
    rejected = warehouse.get().read(QUARANTINE, columns=["record_key"], filters={
        "asset": ["sentiment_scores"], "reason": [reason], "record_key": keys})
    return {key.removeprefix("news|") for key in rejected.record_key}


def _read(warehouse: WarehouseResource, spec: TableSpec, window, columns) -> pd.DataFrame:
    """The window's rows; none when the table no longer matches the code (the blocking
    `schema_matches_code` check reports that, naming the columns)."""
    bounds = (None, None) if window is None or spec.time_column is None else window
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
