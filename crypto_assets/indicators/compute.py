"""Indicators for a long frame of bars (one row per symbol, interval and bar), without Dagster.

    from crypto_assets.indicators import compute_indicators, compute_window
    table = compute_indicators(bars)                       # every bar of the frame
    result = compute_window(bars_with_lookback, start, end)  # only bars in [start, end)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crypto_assets.indicators.columns import INDICATOR_NAMES
from crypto_assets.indicators.params import supported_interval
from crypto_assets.indicators.series import PreparedBars, SeriesArrays, prepare, usable_ohlc
from crypto_assets.indicators.shared import returns, session_anchored

def _talib_importable() -> bool:
    try:
        import talib  # noqa: F401  (the wheel bundles the C library; an import error means no TA-Lib)
    except ImportError:
        return False
    return True


TALIB_AVAILABLE = _talib_importable()
ENGINES = ("talib", "pandas-ta")


def default_engine() -> str:
    """TA-Lib when its wheel is installed, else pandas-ta-classic (same columns)."""
    return "talib" if TALIB_AVAILABLE else "pandas-ta"


def _series_function(engine: str):
    # Imported lazily: the fallback must work where `import talib` fails.
    if engine == "talib":
        from crypto_assets.indicators.talib_path import series_indicators
    elif engine == "pandas-ta":
        from crypto_assets.indicators.pandas_ta_path import series_indicators
    else:
        raise ValueError(f"unknown indicator engine {engine!r}; choose one of {ENGINES}")
    return series_indicators


def _indicator_arrays(bars: PreparedBars, engine: str) -> dict[str, np.ndarray]:
    """Every indicator column for the usable rows, in the prepared (sorted) order."""
    n = len(bars.close)
    columns = {name: np.full(n, np.nan) for name in INDICATOR_NAMES}
    columns.update(returns(bars))
    columns.update(session_anchored(bars))
    log_return_1 = columns["log_return_1"]
    per_series = _series_function(engine)
    for rows in bars.series_slices():
        arrays = SeriesArrays(
            bars.open[rows], bars.high[rows], bars.low[rows], bars.close[rows], bars.volume[rows], log_return_1[rows]
        )
        for name, values in per_series(arrays).items():
            columns[name][rows] = values
    return columns


def compute_indicators(bars: pd.DataFrame, engine: str | None = None) -> pd.DataFrame:
    """One output row per input bar: symbol, bar_start, interval (+ bar_end if given) and the
    indicator columns, sorted by (symbol, interval, bar_start).

    `bars` needs symbol, bar_start, interval, open, high, low, close, volume (volume may be
    NaN). A bar whose OHLC is missing or not positive gets NaN indicators and is left out of
    its series (as if it were a gap). Each value uses only bars at or before its own bar.
    """
    prepared = prepare(bars)
    arrays = _indicator_arrays(prepared, engine or default_engine())
    out = prepared.keys.copy()
    usable = prepared.usable
    data = {}
    for name in INDICATOR_NAMES:
        full = np.full(len(out), np.nan)
        full[usable] = arrays[name]
        data[name] = full
    return pd.concat([out, pd.DataFrame(data, index=out.index)], axis=1)


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass
class WindowResult:
    frame: pd.DataFrame  # indicator rows whose bar_start is in [start, end)
    rows_in: int  # bars read, lookback included
    symbols: int
    compute_seconds: float
    engine: str
    skipped_by_interval: dict[str, int] = field(default_factory=dict)  # window bars of unsupported intervals
    rows_without_ohlc: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows_in / max(self.compute_seconds, 1e-9)


def compute_window(bars: pd.DataFrame, start, end, engine: str | None = None) -> WindowResult:
    """Indicators for the bars in [start, end), computed over everything in `bars` (the window
    plus its lookback) and then cut to the window.

    Bars of an interval the hourly asset does not compute (longer than 1h, see
    `params.supported_interval`) are left out and counted in `skipped_by_interval`.
    """
    engine = engine or default_engine()
    start, end = _utc(start), _utc(end)
    bar_start = pd.to_datetime(bars["bar_start"], utc=True)
    in_window = ((bar_start >= start) & (bar_start < end)).to_numpy()

    intervals = bars["interval"].astype(str)
    supported = {i: supported_interval(i) for i in intervals.unique()}
    ok = intervals.map(supported).to_numpy(dtype=bool)
    skipped = intervals[in_window & ~ok].value_counts().astype(int).to_dict()

    # Series without a bar in the window cannot contribute an output row: skip them.
    wanted = bars.loc[in_window & ok, ["symbol", "interval"]].drop_duplicates()
    pairs = pd.MultiIndex.from_frame(bars[["symbol", "interval"]])
    needed = pairs.isin(pd.MultiIndex.from_frame(wanted)) & ok
    used = bars.loc[needed]

    started = time.perf_counter()
    table = compute_indicators(used, engine)
    seconds = time.perf_counter() - started

    keep = ((table["bar_start"] >= start) & (table["bar_start"] < end)).to_numpy()
    frame = table.loc[keep].reset_index(drop=True)
    window_bars = bars.loc[in_window & ok]
    return WindowResult(
        frame=frame,
        rows_in=len(used),
        symbols=int(frame["symbol"].nunique()),
        compute_seconds=seconds,
        engine=engine,
        skipped_by_interval={str(k): int(v) for k, v in skipped.items()},
        rows_without_ohlc=int((~usable_ohlc(window_bars)).sum()),
    )
