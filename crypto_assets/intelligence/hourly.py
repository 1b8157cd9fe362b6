"""Hourly close and volume per symbol from `ohlcv_bars`, and dense (hour x symbol) matrices.

The hour [h, h + 1h) of a symbol is described by ONE bar interval of at most an hour: the finest
present in that hour (as `ml_features` does). Its close is the close of the last bar of that
interval inside the hour (known at that bar's end, at most h + 1h); its volume is the sum of that
interval's volumes, only when every bar of the hour is there and has a volume (a partial hour
would look like a volume collapse). Bars longer than an hour (4h, 1D) are not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_assets.intelligence.params import HOUR

COLUMNS = ["symbol", "hour", "close", "volume", "interval"]


def hourly_series(bars: pd.DataFrame) -> pd.DataFrame:
    """One row per (symbol, hour): close, volume (NaN unless complete) and the interval used."""
    if bars is None or bars.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS})
    frame = bars.loc[:, ["symbol", "bar_start", "interval", "close", "volume"]].copy()
    frame["bar_start"] = pd.to_datetime(frame["bar_start"], utc=True)
    lengths = {i: pd.Timedelta(i) for i in pd.unique(frame["interval"].astype(str))}
    frame["length"] = frame["interval"].astype(str).map(lengths)
    frame = frame[(frame["length"] <= HOUR) & (HOUR % frame["length"] == pd.Timedelta(0))]
    frame = frame[np.isfinite(frame["close"].to_numpy(dtype="float64", na_value=np.nan))]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS})
    frame["hour"] = frame["bar_start"].dt.floor("h")
    # the finest interval of each (symbol, hour)
    finest = frame.groupby(["symbol", "hour"], sort=False)["length"].transform("min")
    frame = frame[frame["length"] == finest]
    frame = frame.sort_values(["symbol", "hour", "bar_start"], kind="stable")
    grouped = frame.groupby(["symbol", "hour"], sort=True)
    volume = frame["volume"].astype("float64")
    out = grouped.agg(close=("close", "last"), interval=("interval", "first"), length=("length", "first"),
                      n=("close", "size"))
    out["volume"] = volume.groupby([frame["symbol"], frame["hour"]]).sum(min_count=1)
    complete = (volume.notna().groupby([frame["symbol"], frame["hour"]]).sum() * out["length"]) == HOUR
    out.loc[~complete, "volume"] = np.nan
    out = out.reset_index()
    out["close"] = out["close"].astype("float64")
    return out[COLUMNS]


@dataclass(frozen=True)
class Matrix:
    """Dense values on a regular hourly grid: `values[i, j]` is hour `hours[i]`, symbol `symbols[j]`."""

    hours: pd.DatetimeIndex
    symbols: list[str]
    values: np.ndarray


def to_matrix(long: pd.DataFrame, column: str, hours: pd.DatetimeIndex | None = None,
              key: str = "symbol") -> Matrix:
    """Pivot `long` (key, hour, column) onto every hour from the first to the last (NaN where absent)."""
    if hours is None:
        if long.empty:
            hours = pd.DatetimeIndex([], tz="UTC")
        else:
            hours = pd.date_range(long["hour"].min(), long["hour"].max(), freq="h")
    symbols = sorted(pd.unique(long[key].astype(str))) if len(long) else []
    values = np.full((len(hours), len(symbols)), np.nan)
    if len(long) and len(hours):
        rows = hours.get_indexer(pd.DatetimeIndex(long["hour"]))
        cols = pd.Index(symbols).get_indexer(long[key].astype(str))
        ok = rows >= 0
        values[rows[ok], cols[ok]] = long[column].to_numpy(dtype="float64", na_value=np.nan)[ok]
    return Matrix(hours, symbols, values)


def windows(values: np.ndarray, width: int, *, include_current: bool = True, chunk_elements: int = 2_000_000):
    """Yield (row slice, window view of shape (rows, symbols, width)) for every row.

    The window of row i holds rows i-width+1 .. i (include_current) or i-width .. i-1, padded with
    NaN before the first row. Each window's values are taken whole (no running sums), so a row's
    result never depends on how much earlier history was loaded beyond the window.
    """
    n, k = values.shape
    shift = 0 if include_current else 1
    padded = np.vstack([np.full((width + shift, k), np.nan), values])
    view = np.lib.stride_tricks.sliding_window_view(padded, width, axis=0)  # (n + shift + 1, k, width)
    chunk = max(1, chunk_elements // max(1, k * width))  # bounded memory for the per-chunk copies
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        yield slice(lo, hi), view[lo + 1: hi + 1]  # padded[i+1 : i+1+width] is row i's window


def log_returns(close: np.ndarray) -> np.ndarray:
    """ln(close_i / close_{i-1}); NaN where either hour is missing."""
    out = np.full_like(close, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = np.log(close[1:] / close[:-1])
    out[~np.isfinite(out)] = np.nan
    return out


def window_stats(window: np.ndarray, min_count: int, std: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean, sample std) over the last axis, ignoring NaN; mean/std NaN below `min_count`
    (std all NaN when not asked for)."""
    finite = np.isfinite(window)
    count = finite.sum(axis=-1)
    filled = np.where(finite, window, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = filled.sum(axis=-1) / count
        if std:
            dev = np.where(finite, window - mean[..., None], 0.0)
            std = np.sqrt((dev * dev).sum(axis=-1) / (count - 1))
        else:
            std = np.full(mean.shape, np.nan)
    enough = count >= min_count
    return count, np.where(enough, mean, np.nan), np.where(enough & (count > 1), std, np.nan)


def _sorted_median(sorted_values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of each row of values sorted along the last axis with NaN last (`count` finite each)."""
    safe = np.maximum(count, 1)
    lo = np.take_along_axis(sorted_values, ((safe - 1) // 2)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(sorted_values, (safe // 2)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, (lo + hi) / 2.0, np.nan)


def window_median_mad(window: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, median, median absolute deviation) over the last axis, ignoring NaN.

    Sorting puts NaN last, so the median is read at the middle of each row's finite values
    (faster than nanmedian, and the same numbers)."""
    count = np.isfinite(window).sum(axis=-1)
    median = _sorted_median(np.sort(window, axis=-1), count)
    with np.errstate(invalid="ignore"):
        deviation = np.abs(window - median[..., None])
    mad = _sorted_median(np.sort(deviation, axis=-1), count)
    enough = count >= min_count
    return count, np.where(enough, median, np.nan), np.where(enough, mad, np.nan)
