"""`technical_indicators`: indicators per (symbol, interval) bar series, hour by hour.

Each run reads its own window of `ohlcv_bars` plus the LOOKBACK_PARTITIONS hours before it
(the `LOOKBACK` partition mapping below), computes over all of it and returns only the
window's rows, which the warehouse IO manager writes.

The Dagster input is the identity partition of `ohlcv_bars`; the lookback hours are read from
the warehouse directly. Declared as the input's partition mapping, the 600 lookback hours would
all count as required parents: one missing hour in the last 25 days (or a fresh deployment)
would block automation of every later partition. Missing lookback hours only lengthen warm-up
(values without enough history are NaN). The computation itself lives in
`crypto_assets.indicators` (pure functions, no Dagster).
"""

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import SINGLE_RUN, partition_label, window_of
from crypto_assets.indicators import LOOKBACK_PARTITIONS, REQUIRED_HISTORY_BARS, compute_window
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.indicators import TECHNICAL_INDICATORS
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

# Offsets count partitions of the upstream (`ohlcv_bars`, hourly): -600 = the 600 hours before.
# Early partitions (the first 25 days of HOURLY) read what exists instead of failing.
LOOKBACK = dg.TimeWindowPartitionMapping(
    start_offset=-LOOKBACK_PARTITIONS, allow_nonexistent_upstream_partitions=True
)

SOURCE = "computed"


def lookback_start(window_start) -> pd.Timestamp:
    """Start of the lookback the LOOKBACK mapping describes for a window starting at `window_start`."""
    key = HOURLY.get_partition_key_for_timestamp(pd.Timestamp(window_start).timestamp())
    subset = HOURLY.empty_subset().with_partition_keys([key])
    mapped = LOOKBACK.get_upstream_mapped_partitions_result_for_partitions(subset, HOURLY, HOURLY)
    keys = list(mapped.partitions_subset.get_partition_keys())
    return pd.Timestamp(HOURLY.time_window_for_partition_key(min(keys)).start) if keys else pd.Timestamp(window_start)


def _with_bar_end(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the upstream bar_end; derive it from bar_start + interval where it is missing."""
    derived = frame["bar_start"] + pd.to_timedelta(frame["interval"].astype(str))
    bar_end = pd.to_datetime(frame["bar_end"], utc=True) if "bar_end" in frame else derived
    return frame.assign(bar_end=bar_end.fillna(derived))


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=SINGLE_RUN,
    group_name="enrich",
    kinds={"python", "sql"},
    ins={"ohlcv_bars": dg.AssetIn()},
    description=(
        "Technical indicators (returns, volatility, RSI, MACD, Bollinger, SMA/EMA, ATR, Stochastic, ADX, CCI, "
        "MFI, session OBV and VWAP, volume z-score) per symbol and bar interval, computed with TA-Lib "
        f"(pandas-ta-classic fallback). Reads {LOOKBACK_PARTITIONS} hours of earlier bars so that every value "
        "equals the full-history computation; writes only the partition's own bars."
    ),
)
def technical_indicators(
    context: dg.AssetExecutionContext, ohlcv_bars: pd.DataFrame, warehouse: WarehouseResource
) -> pd.DataFrame:
    window = window_of(context)
    history_start = lookback_start(window.start)
    history = warehouse.get().read(OHLCV_BARS, history_start, window.start)
    bars = pd.concat([history, ohlcv_bars], ignore_index=True) if len(history) else ohlcv_bars
    result = compute_window(bars, window.start, window.end)
    if result.skipped_by_interval:
        context.log.warning(
            f"bars of intervals {result.skipped_by_interval} not computed: {LOOKBACK_PARTITIONS} hours of "
            f"lookback hold fewer than the {REQUIRED_HISTORY_BARS} bars they need"
        )
    frame = _with_bar_end(result.frame).assign(source=SOURCE, ingested_at=utcnow())
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "rows": len(frame),
            "symbols": result.symbols,
            "rows_by_interval": dg.MetadataValue.json(frame.groupby("interval").size().astype(int).to_dict()),
            "bars_read_with_lookback": result.rows_in,
            "compute_seconds": round(result.compute_seconds, 4),
            "compute_rows_per_s": round(result.rows_per_second),
            "engine": result.engine,
            "lookback_partitions": LOOKBACK_PARTITIONS,
            "skipped_bars_by_interval": dg.MetadataValue.json(result.skipped_by_interval),
            "bars_without_usable_ohlc": result.rows_without_ohlc,
        }
    )
    return frame[TECHNICAL_INDICATORS.column_names]


ASSETS = [technical_indicators]
