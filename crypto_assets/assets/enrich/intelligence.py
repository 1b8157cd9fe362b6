"""`market_regimes` and `market_anomalies`: market intelligence hour by hour, from the warehouse.

Both read their own window of `ohlcv_bars` (the Dagster input, identity partition) plus the hours
before it from the warehouse (the lookback is not a partition mapping: as one, every lookback hour
would be a required parent and one missing hour would block automation; see technical_indicators).
The methods are pure functions in `crypto_assets.intelligence`; docs/intelligence.md explains them.
"""


import dagster as dg
import pandas as pd

from crypto_assets.assets.common import SINGLE_RUN, partition_label, window_of
from crypto_assets.intelligence import params as ip
from crypto_assets.intelligence.regimes import compute_regimes
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.intelligence import MARKET_REGIMES
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

SOURCE = "computed"
BAR_COLUMNS = ["symbol", "bar_start", "interval", "close", "volume"]


def bars_with_lookback(warehouse, bars: pd.DataFrame, start: pd.Timestamp, hours: int) -> pd.DataFrame:
    """The window's bars plus the warehouse's bars of the `hours` hours before `start`."""
    history = warehouse.read(OHLCV_BARS, start - pd.Timedelta(hours=hours), start, columns=BAR_COLUMNS)
    frames = [f[BAR_COLUMNS] for f in (history, bars) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else bars.reindex(columns=BAR_COLUMNS)


def _counts(frame: pd.DataFrame, column: str) -> dict:
    return {str(k): int(v) for k, v in frame[column].value_counts().items()}


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=SINGLE_RUN,
    group_name="enrich",
    kinds={"python", "sql"},
    ins={"ohlcv_bars": dg.AssetIn(metadata={"columns": BAR_COLUMNS})},
    description=(
        "Trend x volatility regime (bull / bear / sideways; high / low volatility) per symbol and hour, and "
        "market-wide (`_MARKET`), from hourly closes known at the hour's close only: SMA(24h) vs SMA(168h) with a "
        "sideways band of half the 24h realized volatility; volatility high when above the median of its own "
        f"trailing week. Deterministic, nothing fitted; reads {ip.REGIME_LOOKBACK_HOURS} hours of bars before the "
        "partition so values equal the full-history computation. Regime changes are flagged "
        "(previous_regime, regime_changed). See docs/intelligence.md."
    ),
)
def market_regimes(context: dg.AssetExecutionContext, ohlcv_bars: pd.DataFrame,
                   warehouse: WarehouseResource) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    bars = bars_with_lookback(warehouse.get(), ohlcv_bars, start, ip.REGIME_LOOKBACK_HOURS)
    frame = compute_regimes(bars, start, end).assign(source=SOURCE, ingested_at=utcnow())
    known = frame[frame["regime"].notna()]
    changes = frame[frame["regime_changed"].astype(bool)]
    context.add_output_metadata({
        "partition": partition_label(context),
        "rows": len(frame),
        "symbols": int((frame["scope"] == "symbol").groupby(frame["symbol"]).any().sum()) if len(frame) else 0,
        "rows_with_regime": len(known),
        "rows_warming_up": len(frame) - len(known),
        "regimes": dg.MetadataValue.json(_counts(known, "regime")),
        "regime_changes": len(changes),
        "market_regime_latest": str(frame[frame["scope"] == "market"]["regime"].iloc[-1])
        if (frame["scope"] == "market").any() else "none",
        "bars_read_with_lookback": len(bars),
        "lookback_hours": ip.REGIME_LOOKBACK_HOURS,
        "method": ip.REGIME_METHOD_VERSION,
    })
    return frame[MARKET_REGIMES.column_names]


ASSETS = [market_regimes]
