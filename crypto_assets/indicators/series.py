"""Turn a long frame of bars into contiguous per-series numpy arrays, and back.

A *series* is one (symbol, interval): indicators never mix bar lengths or symbols. Rows are
sorted by (symbol, interval, bar_start) once, so each series is a contiguous slice and TA-Lib
can run on views of the whole-frame arrays without copying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

KEY_COLUMNS = ("symbol", "bar_start", "interval")
PRICE_COLUMNS = ("open", "high", "low", "close")
INPUT_COLUMNS = (*KEY_COLUMNS, *PRICE_COLUMNS, "volume")
NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class SeriesArrays:
    """One series' bars, oldest first (views into the whole-frame arrays)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    log_return_1: np.ndarray


@dataclass(frozen=True)
class PreparedBars:
    """The usable bars of a frame, sorted, as float64 arrays, with series boundaries.

    `keys` holds every input row (usable or not) in output order; `usable` marks the rows
    whose OHLC are finite and positive, which are the only ones the arrays contain.
    """

    keys: pd.DataFrame
    usable: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    bar_start_ns: np.ndarray
    series_bounds: np.ndarray  # start offset of each series, then len: series i = [b[i], b[i+1])

    @property
    def n_series(self) -> int:
        return len(self.series_bounds) - 1

    def series_slices(self):
        for a, b in zip(self.series_bounds[:-1], self.series_bounds[1:]):
            yield slice(int(a), int(b))

    def position_in_series(self) -> np.ndarray:
        """0 for each series' first bar, 1 for the next, ..."""
        lengths = np.diff(self.series_bounds)
        return np.arange(len(self.close)) - np.repeat(self.series_bounds[:-1], lengths)

    def series_id(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_series), np.diff(self.series_bounds))


def prepare(bars: pd.DataFrame) -> PreparedBars:
    missing = [c for c in INPUT_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}; need {list(INPUT_COLUMNS)}")
    extra = ["bar_end"] if "bar_end" in bars.columns else []
    frame = bars.loc[:, [*INPUT_COLUMNS, *extra]].reset_index(drop=True)
    frame["bar_start"] = pd.to_datetime(frame["bar_start"], utc=True)
    dupes = frame.duplicated(subset=list(KEY_COLUMNS))
    if dupes.any():
        raise ValueError(f"{int(dupes.sum())} bars repeat a (symbol, bar_start, interval) key, "
                         f"e.g. {frame.loc[dupes, list(KEY_COLUMNS)].head(3).to_dict('records')}")

    # Sorting on factorized codes is much faster than on string columns.
    symbol_code = pd.factorize(frame["symbol"], sort=True)[0]
    interval_code = pd.factorize(frame["interval"], sort=True)[0]
    start_ns = pd.DatetimeIndex(frame["bar_start"]).as_unit("ns").asi8  # UTC nanoseconds
    order = np.lexsort((start_ns, interval_code, symbol_code))
    frame = frame.take(order).reset_index(drop=True)
    symbol_code, interval_code, start_ns = symbol_code[order], interval_code[order], start_ns[order]

    prices = {c: frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in PRICE_COLUMNS}
    usable = usable_ohlc(frame)
    idx = np.flatnonzero(usable)
    sym, itv = symbol_code[idx], interval_code[idx]
    new_series = np.r_[True, (sym[1:] != sym[:-1]) | (itv[1:] != itv[:-1])] if len(idx) else np.zeros(0, bool)
    bounds = np.r_[np.flatnonzero(new_series), len(idx)].astype(np.int64)

    def take(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[idx])

    volume = frame["volume"].to_numpy(dtype="float64", na_value=np.nan)
    return PreparedBars(
        keys=frame.loc[:, [*KEY_COLUMNS, *extra]],
        usable=usable,
        open=take(prices["open"]),
        high=take(prices["high"]),
        low=take(prices["low"]),
        close=take(prices["close"]),
        volume=take(volume),
        bar_start_ns=take(start_ns),
        series_bounds=bounds,
    )


def usable_ohlc(bars: pd.DataFrame) -> np.ndarray:
    """Rows whose open, high, low and close are all finite and positive."""
    usable = np.ones(len(bars), dtype=bool)
    for c in PRICE_COLUMNS:
        values = bars[c].to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            usable &= np.isfinite(values) & (values > 0)
    return usable


def finite_runs(values: np.ndarray) -> list[slice]:
    """Maximal runs of finite values, as slices."""
    finite = np.isfinite(values)
    if finite.all():
        return [slice(0, len(values))] if len(values) else []
    edges = np.diff(np.r_[0, finite.astype(np.int8), 0])
    return [slice(int(a), int(b)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def over_finite_runs(fn: Callable[..., np.ndarray], gate: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
    """`fn(*arrays)` computed separately on each run where `gate` is finite; NaN elsewhere.

    Used for the volume indicators: volume may be missing for some bars, and TA-Lib's running
    sums would carry one NaN forward forever (so a value would depend on how far back the
    computation started). Restarting after each gap makes a value depend only on its own window.
    """
    out = np.full(len(gate), np.nan)
    for run in finite_runs(gate):
        out[run] = fn(*(a[run] for a in arrays))
    return out
