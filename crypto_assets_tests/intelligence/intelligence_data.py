"""SYNTHETIC bars for the market-intelligence tests (regimes, anomalies): generated numbers shaped like
`ohlcv_bars`, `source` = synthetic; never written as real data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets_tests.indicators.indicator_data import random_walk_bars

SOURCE = "synthetic"
INGESTED = pd.Timestamp("2030-01-01", tz="UTC")


def as_ohlcv(bars: pd.DataFrame, method: str = "resampled_observations") -> pd.DataFrame:
    """Rows of `ohlcv_bars` (columns a bar frame lacks stay empty)."""
    return bars.assign(bar_end=bars.bar_start + pd.to_timedelta(bars.interval), method=method, source=SOURCE,
                       ingested_at=INGESTED).reindex(columns=OHLCV_BARS.column_names)


def walk(n_symbols: int, hours: int, start: str = "2024-01-01", seed: int = 0, interval: str = "1h") -> pd.DataFrame:
    n = hours * int(pd.Timedelta("1h") / pd.Timedelta(interval))
    return as_ohlcv(random_walk_bars(n_symbols, n, interval=interval, start=start, seed=seed))


def from_log_returns(symbol: str, returns: np.ndarray, start: str = "2024-01-01", price: float = 100.0,
                     volume: np.ndarray | None = None) -> pd.DataFrame:
    """Hourly bars whose closes follow the given hourly log returns exactly."""
    close = price * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[price], close[:-1]])
    times = pd.date_range(start, periods=len(returns), freq="h", tz="UTC")
    return as_ohlcv(pd.DataFrame({
        "symbol": symbol, "bar_start": times, "interval": "1h", "open": open_,
        "high": np.maximum(open_, close), "low": np.minimum(open_, close), "close": close,
        "volume": volume if volume is not None else np.full(len(returns), 1000.0),
    }))
