"""`market_regimes` and `market_anomalies`: market intelligence hour by hour, from the warehouse.

Both read their own window of `ohlcv_bars` (the Dagster input, identity partition) plus the hours
before it from the warehouse (the lookback is not a partition mapping: as one, every lookback hour
would be a required parent and one missing hour would block automation; see technical_indicators).
The methods are pure functions in `crypto_assets.intelligence`; docs/intelligence.md explains them.
"""


import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.intelligence import params as ip
from crypto_assets.intelligence.anomalies import compute_anomalies
from crypto_assets.intelligence.regimes import compute_regimes
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.intelligence import MARKET_ANOMALIES, MARKET_REGIMES
from crypto_assets.tables.news import NEWS_ARTICLES
from crypto_assets.tables.prices import EXCHANGE_CANDLES, OHLCV_BARS
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
    backfill_policy=HOURLY_BACKFILL,
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


def anomalies_result(frame: pd.DataFrame, window: str) -> dg.AssetCheckResult:
    """The `anomalies_found` check: WARN-failed while the hours checked hold anomalies (the alert sensor turns
    a failed check into an alert, and a later passing run into a resolved message)."""
    found = frame[frame["is_anomaly"].astype(bool)] if len(frame) else frame
    listed = [f"{pd.Timestamp(r.bar_start):%Y-%m-%d %H:%M} {r.symbol} {r.kind} value={r.value:.4g} "
              f"baseline={r.baseline:.4g} z={r.z:.1f}" for r in found.head(20).itertuples()]
    text = (f"{len(found)} anomalies in {len(frame)} scores: " + "; ".join(listed[:5])) if len(found) else \
        f"no anomaly in {len(frame)} scores"
    return dg.AssetCheckResult(
        passed=len(found) == 0, severity=dg.AssetCheckSeverity.WARN, description=text,
        metadata={"anomalies": len(found), "scores": len(frame), "window": window,
                  "by_kind": dg.MetadataValue.json({str(k): int(v) for k, v in found["kind"].value_counts().items()}
                                                   if len(found) else {}),
                  "anomalies_listed": dg.MetadataValue.json(listed)})


CANDLE_COLUMNS = ["exchange", "symbol", "bar_start", "interval", "close"]


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="enrich",
    kinds={"python", "sql"},
    ins={"ohlcv_bars": dg.AssetIn(metadata={"columns": BAR_COLUMNS})},
    # Optional inputs, read from the warehouse with the trailing window: lineage only, never required.
    deps=[dg.AssetDep("exchange_candles"), dg.AssetDep("news_articles")],
    description=(
        "Hourly anomalies with their evidence: robust z-scores (median and 1.4826 x MAD of the "
        f"{ip.ANOMALY_WINDOW_HOURS} hours before the hour) of hourly log returns (price_jump), log volume "
        "(volume_spike), the spread of exchanges' closes (exchange_divergence, when exchange candles exist) and "
        f"the count of published news articles (news_spike, market-wide). |z| >= {ip.ANOMALY_Z:g} is an anomaly "
        "(is_anomaly, with JSON evidence); every scored hour is a row. The `anomalies_found` check fails with "
        "WARN when the run found any, which the alert sensor reports. See docs/intelligence.md."
    ),
)
def market_anomalies(context: dg.AssetExecutionContext, ohlcv_bars: pd.DataFrame,
                     warehouse: WarehouseResource) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    wh = warehouse.get()
    reach = start - pd.Timedelta(hours=ip.ANOMALY_LOOKBACK_HOURS)
    bars = bars_with_lookback(wh, ohlcv_bars, start, ip.ANOMALY_LOOKBACK_HOURS)
    candles = wh.read(EXCHANGE_CANDLES, reach, end, columns=CANDLE_COLUMNS, filters={"interval": ["1h"]})
    news = wh.read(NEWS_ARTICLES, reach, end, columns=["published_at"])
    frame = compute_anomalies(bars, start, end, candles=candles, news=news).assign(source=SOURCE,
                                                                                   ingested_at=utcnow())
    found = frame[frame["is_anomaly"].astype(bool)]
    context.add_output_metadata({
        "partition": partition_label(context),
        "rows": len(frame),
        "rows_by_kind": dg.MetadataValue.json(_counts(frame, "kind")),
        "anomalies": len(found),
        "anomalies_by_kind": dg.MetadataValue.json(_counts(found, "kind")),
        "anomalies_listed": dg.MetadataValue.json([
            f"{r.bar_start:%Y-%m-%d %H:%M} {r.symbol} {r.kind} z={r.z:.1f}" for r in found.head(20).itertuples()]),
        "inputs_read": dg.MetadataValue.json({"ohlcv_bars": len(bars), "exchange_candles": len(candles),
                                              "news_articles": len(news)}),
        "window_hours": ip.ANOMALY_WINDOW_HOURS,
        "threshold_z": ip.ANOMALY_Z,
        "method": ip.ANOMALY_METHOD_VERSION,
    })
    return frame[MARKET_ANOMALIES.column_names]


ASSETS = [market_regimes, market_anomalies]
