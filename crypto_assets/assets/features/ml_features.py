"""`ml_features`: one row per (symbol, bar_start) with 160+ features, hour by hour.

Inputs and how much of each a run reads:
- `ohlcv_bars`, `technical_indicators`: the run's own window (identity mapping);
- `sentiment_scores`: the window plus the 24 hours before it (lookback mapping), so the 24h
  sentiment window of the first bar is complete;
- `macro_series`, `onchain_metrics` (daily): read directly from the warehouse with an explicit
  as-of window (macro ~1 year back by observation date: a quarterly GDP value and the one before
  it can be that old; on-chain 10 days). The Dagster dependencies below carry the lineage; their
  mappings were checked with `get_upstream_mapped_partitions_result_for_partitions` (a
  TimeWindowPartitionMapping offset counts HOURLY partitions here, see docs/features.md).

Every feature is as of the bar's close (`asof_time`); the computation lives in
`crypto_assets.features` (pure functions). A missing input never fails the run: its features
are NaN and the dq_* columns say so.
"""

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.features import params as p
from crypto_assets.features.bars import BAR_COLUMNS, INDICATOR_INPUT_COLUMNS
from crypto_assets.features.build import FeatureInputs, build_features, read_windows
from crypto_assets.features.derivatives import DERIVATIVES_COLUMNS, VOLUME_BAR_COLUMNS
from crypto_assets.features.derivatives import read_window as derivatives_read_window
from crypto_assets.features.dictionary import ALL_COLUMNS, FEATURE_NAMES
from crypto_assets.features.intelligence import FNG_COLUMNS, REGIME_COLUMNS, fng_read_window, regime_read_window
from crypto_assets.features.narratives import NARRATIVE_COLUMNS
from crypto_assets.features.narratives import read_window as narratives_read_window
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.derivatives import DERIVATIVES_METRICS
from crypto_assets.tables.features import ML_FEATURES
from crypto_assets.tables.macro import MACRO_SERIES
from crypto_assets.tables.intelligence import FEAR_GREED_INDEX, MARKET_REGIMES
from crypto_assets.tables.narratives import NEWS_NARRATIVES
from crypto_assets.tables.onchain import ONCHAIN_METRICS
from crypto_assets.tables.sentiment import SENTIMENT_SCORES
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

SOURCE = "computed"
SENTIMENT_COLUMNS = ["item_id", "model", "score", "confidence", "label", "published_at", "symbols_mentioned"]
MACRO_COLUMNS = ["series_id", "observation_date", "value", "available_at"]
ONCHAIN_COLUMNS = ["chain", "metric", "date", "value", "available_at"]

# Hourly -> hourly: offsets count hours. allow_nonexistent: the first day of HOURLY has no 24h before it.
SENTIMENT_LOOKBACK = dg.TimeWindowPartitionMapping(
    start_offset=-p.SENTIMENT_LOOKBACK_PARTITIONS, allow_nonexistent_upstream_partitions=True
)
# Daily upstream of an hourly downstream: the offsets shift the HOURLY window (in hours), which
# then maps to the days it touches. Hour H of day D ->
#   macro:   days D-62 .. D   (D only once that daily partition exists, i.e. in backfills);
#   onchain: days D-10 .. D-1 (closed days only).
MACRO_LINEAGE = dg.TimeWindowPartitionMapping(
    start_offset=-24 * p.MACRO_LINEAGE_DAYS, end_offset=0, allow_nonexistent_upstream_partitions=True
)
ONCHAIN_LINEAGE = dg.TimeWindowPartitionMapping(
    start_offset=-24 * p.ONCHAIN_LINEAGE_DAYS, end_offset=-24, allow_nonexistent_upstream_partitions=True
)
# Hourly -> hourly: the 24 h changes of funding and open interest look a day (plus staleness) back.
# Optional (never required by automation, see policies.py): a missing hour is NaN features + dq_*.
DERIVATIVES_LINEAGE = dg.TimeWindowPartitionMapping(start_offset=-33, allow_nonexistent_upstream_partitions=True)
# Fear & Greed (daily): hour H of day D -> days D-3 .. D (the value and the day before it, as-of).
# market_regimes is read but NOT declared: it runs in the same runs as ml_features (both follow the
# hour's bars), where a declared parent's failed step would skip the features; the features use the
# regime known when the bar's hour began, which the previous hour's run has written.
FEAR_GREED_LINEAGE = dg.TimeWindowPartitionMapping(start_offset=-24 * 3, end_offset=0,
                                                   allow_nonexistent_upstream_partitions=True)


def column_schema() -> dg.TableSchema:
    """The table's columns with their descriptions and inputs, for the Dagster UI."""
    columns = [
        dg.TableColumn(f.name, f.kind, description=f"{f.description} Inputs: {', '.join(f.inputs)}.")
        for f in ALL_COLUMNS
    ]
    columns += [dg.TableColumn(c.name, c.kind, description=c.description) for c in ML_FEATURES.columns
                if c.name in ("source", "ingested_at")]
    return dg.TableSchema(columns=columns)


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="features",
    kinds={"python", "sql"},
    ins={
        "ohlcv_bars": dg.AssetIn(metadata={"columns": [*BAR_COLUMNS, *VOLUME_BAR_COLUMNS]}),
        "technical_indicators": dg.AssetIn(metadata={"columns": INDICATOR_INPUT_COLUMNS}),
        "sentiment_scores": dg.AssetIn(partition_mapping=SENTIMENT_LOOKBACK,
                                       metadata={"columns": SENTIMENT_COLUMNS}),
    },
    deps=[
        dg.AssetDep("macro_series", partition_mapping=MACRO_LINEAGE),
        dg.AssetDep("onchain_metrics", partition_mapping=ONCHAIN_LINEAGE),
        dg.AssetDep("derivatives_metrics", partition_mapping=DERIVATIVES_LINEAGE),
        dg.AssetDep("fear_greed_index", partition_mapping=FEAR_GREED_LINEAGE),
    ],
    metadata={
        "dagster/column_schema": column_schema(),
        "feature_columns": len(FEATURE_NAMES),
        "as_of": "asof_time = the bar's close (bar_end); every input joined as-of on its availability time",
        "data_dictionary": "docs/data_dictionary.md",
    },
    description=(
        f"ML-ready feature table, one row per (symbol, bar_start), {len(FEATURE_NAMES)} features: bar prices, "
        "technical indicators, trend ratios, calendar, cross-section, sentiment aggregates (per symbol and "
        "market-wide, 1h/4h/24h), macro levels and daily changes, cross-asset ratios, on-chain metrics and "
        "data-quality flags. Each row is as of the bar's close (`asof_time`): sentiment by published_at, macro "
        "by available_at, on-chain once its day has closed; nothing is joined by calendar date. Per symbol and "
        "hour the finest bar interval is featured. Missing inputs give NaN features and dq_* flags, never a "
        "failed run. Columns: docs/data_dictionary.md."
    ),
)
def ml_features(
    context: dg.AssetExecutionContext,
    ohlcv_bars: pd.DataFrame,
    technical_indicators: pd.DataFrame,
    sentiment_scores: pd.DataFrame,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    wh = warehouse.get()
    needs = read_windows(ohlcv_bars, start, end)
    if needs.last_as_of > end:  # bars closing after the window (e.g. 4h candles): their sentiment too
        tail = wh.read(SENTIMENT_SCORES, end, needs.sentiment[1], columns=SENTIMENT_COLUMNS)
        sentiment_scores = pd.concat([f for f in (sentiment_scores, tail) if len(f)] or [sentiment_scores],
                                     ignore_index=True)
    macro = wh.read(MACRO_SERIES, *needs.macro_dates, columns=MACRO_COLUMNS)
    onchain = wh.read(ONCHAIN_METRICS, *needs.onchain_dates, columns=ONCHAIN_COLUMNS)
    derivatives = wh.read(DERIVATIVES_METRICS, *derivatives_read_window(start, needs.last_as_of),
                          columns=DERIVATIVES_COLUMNS)
    # Optional, read from the warehouse and not a declared parent: narratives never block features.
    narratives = wh.read(NEWS_NARRATIVES, *narratives_read_window(start, needs.last_as_of), columns=NARRATIVE_COLUMNS)
    regimes = wh.read(MARKET_REGIMES, *regime_read_window(start, needs.last_as_of), columns=REGIME_COLUMNS)
    fear_greed = wh.read(FEAR_GREED_INDEX, *fng_read_window(start, needs.last_as_of), columns=FNG_COLUMNS)

    built = build_features(
        FeatureInputs(bars=ohlcv_bars, indicators=technical_indicators, sentiment=sentiment_scores,
                      macro=macro, onchain=onchain, derivatives=derivatives, narratives=narratives,
                      regimes=regimes, fear_greed=fear_greed),
        start, end,
    )
    frame = built.frame.assign(source=SOURCE, ingested_at=utcnow())
    stats = built.stats
    presence = stats.get("input_presence", {})
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "rows": stats["rows"],
            "symbols": stats["symbols"],
            "feature_columns": len(FEATURE_NAMES),
            "rows_by_interval": dg.MetadataValue.json(stats.get("rows_by_interval", {})),
            "bars_not_featured_by_interval": dg.MetadataValue.json(stats["not_featured_by_interval"]),
            "input_presence": dg.MetadataValue.json(presence),
            **{f"share_with_{name}": float(share) for name, share in presence.items()},
            "inputs_read": dg.MetadataValue.json({
                "ohlcv_bars": len(ohlcv_bars), "technical_indicators": len(technical_indicators),
                "sentiment_scores": len(sentiment_scores), "macro_series": len(macro),
                "onchain_metrics": len(onchain), "derivatives_metrics": len(derivatives),
                "news_narratives": len(narratives), "market_regimes": len(regimes),
                "fear_greed_index": len(fear_greed),
            }),
        }
    )
    return frame[ML_FEATURES.column_names]


ASSETS = [ml_features]
