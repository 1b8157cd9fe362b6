"""Build `ml_features` rows from the inputs of a time window. Pure: DataFrames in, DataFrame out.

    inputs = FeatureInputs(bars=ohlcv, indicators=ti, sentiment=scores, macro=macro, onchain=onchain)
    built = build_features(inputs, start, end)        # built.frame: one row per (symbol, bar_start)

Rows: the bars of `ohlcv_bars` with bar_start in [start, end), one interval per symbol and hour
(the finest, see `bars.select_bars`). The row's as-of time is the bar's close (`asof_time`); every
feature uses only inputs available at or before it. `read_windows` says how much of each input
a window needs (the sentiment lookback, the macro and on-chain as-of history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from crypto_assets.features import params as p
from crypto_assets.features.bars import (
    bar_features,
    calendar_features,
    cross_section_features,
    join_indicators,
    select_bars,
    trend_features,
)
from crypto_assets.features.daily import macro_features, onchain_features
from crypto_assets.features.derivatives import derivative_features, volume_features
from crypto_assets.features.dictionary import AS_OF, FEATURE_NAMES, KEY_COLUMNS
from crypto_assets.features.intelligence import fear_greed_features, regime_features
from crypto_assets.features.narratives import narrative_features
from crypto_assets.features.sentiment import sentiment_features
from crypto_assets.sources.series_catalog import (
    MacroSeries,
    OnchainMetric,
    macro_series_catalog,
    onchain_metrics_catalog,
)

OUTPUT_COLUMNS = [*(c.name for c in KEY_COLUMNS), *FEATURE_NAMES]
INPUTS = ("ohlcv_bars", "technical_indicators", "sentiment_scores", "macro_series", "onchain_metrics",
          "derivatives_metrics")


@dataclass(frozen=True)
class FeatureInputs:
    bars: pd.DataFrame  # ohlcv_bars rows of the window
    indicators: pd.DataFrame | None = None  # technical_indicators rows of the window
    sentiment: pd.DataFrame | None = None  # sentiment_scores published in [start - 24h, last as-of]
    macro: pd.DataFrame | None = None  # macro_series rows (any dates; used as-of by available_at)
    onchain: pd.DataFrame | None = None  # onchain_metrics rows (used once their day has closed)
    derivatives: pd.DataFrame | None = None  # derivatives_metrics rows (optional; as-of by available_at)
    narratives: pd.DataFrame | None = None  # news_narratives rows (optional; as-of by available_at)
    regimes: pd.DataFrame | None = None  # market_regimes rows (optional; as of the bar's hour start)
    fear_greed: pd.DataFrame | None = None  # fear_greed_index rows (optional; as-of by available_at)


@dataclass(frozen=True)
class FeatureBuild:
    frame: pd.DataFrame  # OUTPUT_COLUMNS, sorted by (symbol, bar_start)
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReadWindows:
    """Time ranges of each input a window needs. Bounds are UTC; `end`s are exclusive."""

    last_as_of: pd.Timestamp
    sentiment: tuple[pd.Timestamp, pd.Timestamp]  # by published_at
    macro_dates: tuple[pd.Timestamp, pd.Timestamp]  # by observation_date
    onchain_dates: tuple[pd.Timestamp, pd.Timestamp]  # by date


def utc(value) -> pd.Timestamp:
    """A UTC timestamp; naive values are taken as UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def read_windows(bars: pd.DataFrame, start, end) -> ReadWindows:
    """What to read for a window whose bars are `bars`: as-of times can pass `end` (a 4h bar)."""
    start, end = utc(start), utc(end)
    last = end
    if len(bars):
        lengths = pd.to_timedelta(pd.Series(pd.unique(bars["interval"]))).max()
        latest_end = pd.to_datetime(bars["bar_end"], utc=True).max() if "bar_end" in bars else pd.NaT
        last = max(x for x in (end, pd.to_datetime(bars["bar_start"], utc=True).max() + lengths, latest_end)
                   if pd.notna(x))
    after = last + pd.Timedelta(microseconds=1)  # the as-of bound is inclusive
    day_after = last.floor("D") + pd.Timedelta(days=1)
    return ReadWindows(
        last_as_of=last,
        sentiment=(start - p.SENTIMENT_WINDOWS["24h"], after),
        macro_dates=((start - p.MACRO_READ_LOOKBACK).floor("D"), day_after),
        onchain_dates=((start - p.ONCHAIN_READ_LOOKBACK).floor("D"), day_after),
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in OUTPUT_COLUMNS})


@lru_cache(maxsize=1)
def _catalogs() -> tuple[list[MacroSeries], list[OnchainMetric]]:
    return macro_series_catalog(), onchain_metrics_catalog()


def build_features(inputs: FeatureInputs, start=None, end=None) -> FeatureBuild:
    """Feature rows for the bars with bar_start in [start, end) (all bars when no bounds).

    Macro series and on-chain metrics are those of the catalogs (resources/*.yaml), like the
    registry's columns.
    """
    macro_catalog, onchain_catalog = _catalogs()
    bars = inputs.bars
    if bars is not None and len(bars) and (start is not None or end is not None):
        t = pd.to_datetime(bars["bar_start"], utc=True)
        inside = (t >= utc(start)) if start is not None else pd.Series(True, index=bars.index)
        if end is not None:
            inside &= t < utc(end)
        bars = bars[inside]
    selected = select_bars(bars if bars is not None else pd.DataFrame())
    rows = selected.rows
    if rows.empty:
        return FeatureBuild(_empty(), {"rows": 0, "symbols": 0, "not_featured_by_interval": {}})

    as_of = rows[AS_OF]
    # Daily inputs are joined once per distinct as-of time, then spread to the rows.
    unique_ns, row_time = np.unique(pd.DatetimeIndex(as_of).asi8, return_inverse=True)
    times = pd.DatetimeIndex(pd.to_datetime(unique_ns, utc=True))

    cols: dict[str, object] = {
        "symbol": rows["symbol"].to_numpy(dtype=object),
        "bar_start": rows["bar_start"],
        "bar_interval": rows["interval"].to_numpy(dtype=object),
        AS_OF: as_of,
        "bar_method": rows["method"].to_numpy(dtype=object),
    }
    bar = bar_features(rows)
    cols.update(bar)
    indicators, has_indicators = join_indicators(rows, inputs.indicators)
    cols.update(indicators)
    cols.update(trend_features(bar["close"], indicators))
    cols.update(calendar_features(rows["bar_start"]))
    cols.update(cross_section_features(rows, indicators["return_1"]))

    sentiment = sentiment_features(rows["symbol"], as_of, inputs.sentiment)
    cols.update(sentiment.columns)

    macro = macro_features(times, inputs.macro, macro_catalog)
    onchain = onchain_features(times, inputs.onchain, onchain_catalog)
    for daily in (macro, onchain):
        cols.update({name: values[row_time] for name, values in daily.columns.items()})

    cols.update(volume_features(rows, bars))
    cols.update(derivative_features(rows["symbol"].to_numpy(dtype=object), as_of, inputs.derivatives))
    cols.update(narrative_features(rows["symbol"].to_numpy(dtype=object), as_of, inputs.narratives))
    cols.update(regime_features(rows["symbol"].to_numpy(dtype=object), rows["bar_start"], inputs.regimes))
    cols.update(fear_greed_features(as_of, inputs.fear_greed))

    cols.update({
        "dq_has_indicators": has_indicators,
        "dq_indicators_warm": np.isfinite(indicators["sma_200"]),
        "dq_has_volume": np.isfinite(bar["volume"]),
        "dq_bar_intervals_available": rows["intervals_available"].to_numpy(dtype="int64"),
        "dq_sentiment_present": sentiment.present,
        "dq_sentiment_fallback_share_24h": sentiment.fallback_share_24h,
        "dq_macro_series_present": macro.present[row_time],
        "dq_macro_newest_age_hours": macro.newest_age_hours[row_time],
        "dq_onchain_metrics_present": onchain.present[row_time],
        "dq_onchain_newest_age_hours": onchain.newest_age_hours[row_time],
    })
    missing = [c for c in OUTPUT_COLUMNS if c not in cols]
    extra = [c for c in cols if c not in OUTPUT_COLUMNS]
    if missing or extra:
        raise AssertionError(f"feature columns differ from the registry: missing {missing}, extra {extra}")
    frame = pd.DataFrame({c: cols[c] for c in OUTPUT_COLUMNS})
    return FeatureBuild(frame, _stats(frame, selected.not_featured_by_interval))


def presence(frame: pd.DataFrame) -> dict[str, float]:
    """Share of rows with each input present."""
    n = max(len(frame), 1)
    return {
        "ohlcv_bars": round(float(len(frame) / n), 4) if len(frame) else 0.0,
        "technical_indicators": round(float(frame["dq_has_indicators"].sum()) / n, 4),
        "sentiment_scores": round(float(frame["dq_sentiment_present"].sum()) / n, 4),
        "macro_series": round(float((frame["dq_macro_series_present"] > 0).sum()) / n, 4),
        "onchain_metrics": round(float((frame["dq_onchain_metrics_present"] > 0).sum()) / n, 4),
        "derivatives_metrics": round(float((frame["dq_derivatives_exchanges"] > 0).sum()) / n, 4),
        "news_narratives": round(float((frame["dq_narratives_24h"] > 0).sum()) / n, 4),
        "market_regimes": round(float(frame["dq_regime_present"].sum()) / n, 4),
        "fear_greed_index": round(float(frame["dq_fng_age_hours"].notna().sum()) / n, 4),
    }


def _stats(frame: pd.DataFrame, not_featured: dict[str, int]) -> dict:
    return {
        "rows": len(frame),
        "symbols": int(frame["symbol"].nunique()),
        "feature_columns": len(FEATURE_NAMES),
        "rows_by_interval": frame["bar_interval"].value_counts().astype(int).to_dict(),
        "not_featured_by_interval": {str(k): int(v) for k, v in not_featured.items()},
        "input_presence": presence(frame),
        "last_as_of": frame[AS_OF].max().isoformat(),
    }
