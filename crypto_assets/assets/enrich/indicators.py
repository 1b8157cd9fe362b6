"""`technical_indicators`: indicators per (symbol, interval) bar series, hour by hour.

Each run reads its own window of `ohlcv_bars` (the Dagster input, identity partition) plus,
per interval in it, the LOOKBACK_BARS bars before it (`read_history`: 50 hours of 5-minute
bars, 600 hours of hourly bars, topped up further back for a series with gaps), computes over
all of it and returns only the window's rows, which the warehouse IO manager writes.

The lookback is read from the warehouse directly, not declared as a partition mapping: as a
mapping it would count hourly partitions (not bars) and every lookback hour would be a
required parent, so one missing hour (or a fresh deployment) would block automation of every
later partition. Missing lookback bars are topped up from further back or, where none exist,
only lengthen warm-up (values without enough history are NaN). The computation itself lives in
`crypto_assets.indicators` (pure functions, no Dagster).
"""

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.indicators import LOOKBACK_BARS, REQUIRED_HISTORY_BARS, compute_window, read_history
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.indicators import TECHNICAL_INDICATORS
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

SOURCE = "computed"
# What the indicators use from the earlier bars (their bar_end is never written: only the
# window's rows are, with the bar_end of the Dagster input).
HISTORY_COLUMNS = ["symbol", "bar_start", "interval", "open", "high", "low", "close", "volume"]


def warehouse_reader(warehouse):
    """`read_history`'s reader over the warehouse's `ohlcv_bars`: one interval, some or all symbols."""

    def read(interval, symbols, start, end) -> pd.DataFrame:
        filters = {"interval": [interval]}
        if symbols is not None:
            filters["symbol"] = list(symbols)
        return warehouse.read(OHLCV_BARS, start, end, columns=HISTORY_COLUMNS, filters=filters)

    return read


def _with_bar_end(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the upstream bar_end; derive it from bar_start + interval where it is missing."""
    derived = frame["bar_start"] + pd.to_timedelta(frame["interval"].astype(str))
    bar_end = pd.to_datetime(frame["bar_end"], utc=True) if "bar_end" in frame else derived
    return frame.assign(bar_end=bar_end.fillna(derived))


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="enrich",
    kinds={"python", "sql"},
    ins={"ohlcv_bars": dg.AssetIn()},
    description=(
        "Technical indicators (returns, volatility, RSI, MACD, Bollinger, SMA/EMA, ATR, Stochastic, ADX, CCI, "
        "MFI, session OBV and VWAP, volume z-score) per symbol and bar interval, computed with TA-Lib "
        f"(pandas-ta-classic fallback). Reads the {LOOKBACK_BARS} earlier bars of each interval (at least one "
        "UTC day) so that every value equals the full-history computation; writes only the partition's own bars."
    ),
)
def technical_indicators(
    context: dg.AssetExecutionContext, ohlcv_bars: pd.DataFrame, warehouse: WarehouseResource
) -> pd.DataFrame:
    window = window_of(context)
    history = read_history(warehouse_reader(warehouse.get()), ohlcv_bars, window.start)
    bars = pd.concat([history.frame, ohlcv_bars], ignore_index=True) if len(history.frame) else ohlcv_bars
    result = compute_window(bars, window.start, window.end)
    if result.skipped_by_interval:
        context.log.warning(
            f"bars of intervals {result.skipped_by_interval} not computed: the hourly asset computes "
            "intervals of at most 1h (see docs/indicators.md)"
        )
    if history.short:
        context.log.info(
            f"{len(history.short)} series have fewer than {REQUIRED_HISTORY_BARS} earlier bars within reach "
            f"(new coins, or long gaps); their values start where their history starts: {history.short[:20]}"
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
            "lookback_bars": LOOKBACK_BARS,
            "lookback_bars_read_by_interval": dg.MetadataValue.json(history.bars_by_interval),
            "lookback_hours_by_interval": dg.MetadataValue.json(history.hours_by_interval),
            "series_topped_up": len(history.topped_up),
            "series_short_of_history": len(history.short),
            "skipped_bars_by_interval": dg.MetadataValue.json(result.skipped_by_interval),
            "bars_without_usable_ohlc": result.rows_without_ohlc,
        }
    )
    return frame[TECHNICAL_INDICATORS.column_names]


ASSETS = [technical_indicators]
