"""SYNTHETIC inputs of `ml_features` (bars, indicators, sentiment, macro, on-chain) for tests and the
benchmark. Generated numbers, shaped like the warehouse tables; never written as real data
(`source` says synthetic)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from crypto_assets.indicators import compute_indicators
from crypto_assets.sources.series_catalog import macro_series_catalog, onchain_metrics_catalog
from crypto_assets.tables.indicators import TECHNICAL_INDICATORS
from crypto_assets.tables.macro import MACRO_SERIES
from crypto_assets.tables.onchain import ONCHAIN_METRICS
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.tables.sentiment import SENTIMENT_SCORES
from crypto_assets_tests.indicators.indicator_data import random_walk_bars

SOURCE = "synthetic"
INGESTED = pd.Timestamp("2030-01-01", tz="UTC")


def ohlcv_rows(n_symbols: int, n_bars: int, interval: str = "5min", start: str = "2024-01-01",
               seed: int = 0, symbols: list[str] | None = None) -> pd.DataFrame:
    bars = random_walk_bars(n_symbols, n_bars, interval=interval, start=start, seed=seed)
    if symbols is not None:
        names = dict(zip(pd.unique(bars.symbol), symbols))
        bars["symbol"] = bars.symbol.map(names)
    return bars.assign(
        bar_end=bars.bar_start + pd.Timedelta(interval), n_observations=5, method="resampled_observations",
        exchange=None, quote=None, quote_volume=np.nan, trade_count=np.nan,  # resampled bars: no exchange figures
        source=SOURCE, ingested_at=INGESTED,
    )[OHLCV_BARS.column_names]


def indicator_rows(bars: pd.DataFrame) -> pd.DataFrame:
    ind = compute_indicators(bars)
    return ind.assign(bar_end=ind.bar_start + pd.to_timedelta(ind.interval), source=SOURCE,
                      ingested_at=INGESTED)[TECHNICAL_INDICATORS.column_names]


def fast_indicator_rows(bars: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Random indicator values (no computation), for throughput benchmarks only."""
    rng = np.random.default_rng(seed)
    frame = bars[["symbol", "bar_start", "interval", "bar_end"]].copy()
    for name in TECHNICAL_INDICATORS.column_names:
        if name not in frame and name not in ("source", "ingested_at"):
            frame[name] = rng.normal(size=len(frame))
    return frame.assign(source=SOURCE, ingested_at=INGESTED)[TECHNICAL_INDICATORS.column_names]


def sentiment_rows(symbols: list[str], start, end, n_items: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    seconds = rng.uniform(0, (end - start).total_seconds(), n_items)
    published = start + pd.to_timedelta(np.sort(seconds), unit="s")
    score = rng.uniform(-1, 1, n_items)
    label = np.where(score > 0.2, "positive", np.where(score < -0.2, "negative", "neutral"))
    mentioned = ["|".join(sorted(rng.choice(symbols, size=rng.integers(0, 3), replace=False)))
                 for _ in range(n_items)]
    model = np.where(rng.random(n_items) < 0.1, "vader", "ProsusAI/finbert")
    return pd.DataFrame({
        "item_id": [f"syn-{seed}-{i}" for i in range(n_items)],
        "item_type": np.where(rng.random(n_items) < 0.5, "news", "social"),
        "model": model, "model_version": "synthetic", "label": label, "score": score,
        "confidence": rng.uniform(0.3, 1.0, n_items), "p_positive": np.nan, "p_negative": np.nan,
        "p_neutral": np.nan, "published_at": published, "symbols_mentioned": mentioned,
        "text_chars": 100, "source": SOURCE, "ingested_at": INGESTED,
        "market_type": np.where(rng.random(n_items) < 0.2, "stock", "crypto"),
    })[SENTIMENT_SCORES.column_names]


def macro_rows(first: date, last: date, seed: int = 0) -> pd.DataFrame:
    """Every catalog series: weekday observations (monthly: the 1st, released ~45 days later)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in macro_series_catalog():
        level = float(rng.uniform(1, 500))
        day = first
        while day <= last:
            if s.frequency == "monthly" or s.frequency == "quarterly":
                ok = day.day == 1 and (s.frequency == "monthly" or day.month in (1, 4, 7, 10))
                available = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=45 if s.frequency == "monthly" else 120)
            else:
                ok = day.weekday() < 5 and (s.frequency == "daily" or day.weekday() == 4)
                available = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=21)
            if ok:
                level *= float(np.exp(rng.normal(0, 0.01)))
                rows.append((s.id, day, level, available, s.provider))
            day += timedelta(days=1)
    frame = pd.DataFrame(rows, columns=["series_id", "observation_date", "value", "available_at", "provider"])
    return frame.assign(source=SOURCE, ingested_at=INGESTED)[MACRO_SERIES.column_names]


def onchain_rows(first: date, last: date, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for m in onchain_metrics_catalog():
        day = first
        while day <= last:
            rows.append((m.chain, m.metric, day, float(rng.uniform(1e3, 1e6)), m.unit,
                         pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1), m.provider))
            day += timedelta(days=1)
    frame = pd.DataFrame(rows, columns=["chain", "metric", "date", "value", "unit", "available_at", "provider"])
    return frame.assign(source=SOURCE, ingested_at=INGESTED)[ONCHAIN_METRICS.column_names]
