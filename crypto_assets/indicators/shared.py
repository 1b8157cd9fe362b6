"""Columns both paths compute the same way, over the whole sorted frame at once.

Returns are elementwise; OBV and VWAP are session-anchored cumulative sums. Neither TA-Lib nor
pandas-ta-classic runs OBV per session (TA-Lib's OBV is cumulative from the first bar it is
given, so its value would depend on where the computation starts and could never be
partition-local). One vectorised implementation serves both paths; the tests check it against
TA-Lib OBV run day by day and pandas-ta-classic's VWAP anchored to "D".
"""

from __future__ import annotations

import numpy as np

from crypto_assets.indicators import params as p
from crypto_assets.indicators.series import NS_PER_DAY, PreparedBars


def returns(bars: PreparedBars) -> dict[str, np.ndarray]:
    """Simple and log returns over n bars within each series (NaN for the first n bars)."""
    close = bars.close
    position = bars.position_in_series()
    out: dict[str, np.ndarray] = {}
    logs: dict[str, np.ndarray] = {}
    for n in p.RETURN_BARS:
        earlier = np.full(len(close), np.nan)
        if n < len(close):
            earlier[n:] = close[:-n]
        earlier[position < n] = np.nan  # n bars back would be another series
        out[f"return_{n}"] = (close - earlier) / earlier  # TA-Lib ROCP's formula
        logs[f"log_return_{n}"] = np.log(close / earlier)
    return {**out, **logs}


def session_ids(bars: PreparedBars) -> np.ndarray:
    """One id per (series, UTC day): the sessions VWAP and OBV restart on."""
    day = bars.bar_start_ns // NS_PER_DAY
    series = bars.series_id()
    if len(day) == 0:
        return np.zeros(0, np.int64)
    new = np.r_[True, (day[1:] != day[:-1]) | (series[1:] != series[:-1])]
    return np.cumsum(new) - 1


def _session_cumsum(values: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """Running sum within each session, in bar order; a NaN stays NaN to the session's end.

    Plain sequential addition per session (np.cumsum), as TA-Lib's OBV loop does, so the
    result matches it bit for bit; pandas' grouped cumsum uses compensated summation and
    differs in the last digit.
    """
    out = np.empty(len(values))
    bounds = np.r_[0, np.flatnonzero(sessions[1:] != sessions[:-1]) + 1, len(values)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        np.cumsum(values[a:b], out=out[a:b])
    return out


def session_anchored(bars: PreparedBars) -> dict[str, np.ndarray]:
    sessions = session_ids(bars)
    close, volume = bars.close, bars.volume
    first_of_session = np.r_[True, sessions[1:] != sessions[:-1]] if len(sessions) else np.zeros(0, bool)

    # OBV: TA-Lib's recursion (first bar +volume; then +/- volume as close rises/falls,
    # unchanged on equal closes) restarted each session. Adding 0.0 or -v is exact, so the
    # running sum reproduces TA-Lib's loop bit for bit.
    direction = np.sign(np.diff(close, prepend=np.nan))
    direction[first_of_session] = 1.0
    obv = _session_cumsum(direction * volume, sessions)

    typical = (bars.high + bars.low + bars.close) / 3.0
    cum_volume = _session_cumsum(volume, sessions)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = _session_cumsum(typical * volume, sessions) / cum_volume
    vwap[~np.isfinite(vwap)] = np.nan
    return {"obv_session": obv, "vwap_session": vwap}


# Small formulas both paths apply to their own band / mean / std outputs.


def flat_windows(values: np.ndarray, window: int) -> np.ndarray:
    """True at each position whose last `window` values (itself included) are all equal.

    Decided on the inputs, not on a computed standard deviation: TA-Lib's is exactly 0 there,
    pandas' rolling std leaves float noise (~1e-14 of the price), which made the same flat
    window NaN on one engine and 0.5 on the other (issue 19)."""
    n = len(values)
    if n < window:
        return np.zeros(n, dtype=bool)
    # Length of the run of equal values ending at each position, in O(n).
    same = np.r_[False, values[1:] == values[:-1]]
    index = np.arange(n)
    run_start = np.maximum.accumulate(np.where(same, 0, index))
    return index - run_start + 1 >= window


def bollinger(close: np.ndarray, upper: np.ndarray, middle: np.ndarray, lower: np.ndarray) -> dict[str, np.ndarray]:
    """%B and width from an engine's bands. In a flat window (BB_BARS equal closes) the band has
    no width: upper = middle = lower = the close, width 0 and %B NaN (undefined, on both engines)."""
    flat = flat_windows(close, p.BB_BARS)
    upper, middle, lower = (np.where(flat, close, band) for band in (upper, middle, lower))
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (upper - lower) / middle
        percent_b = (close - lower) / (upper - lower)
    percent_b[~np.isfinite(percent_b) | flat] = np.nan  # the bands coincide
    return {"bb_upper": upper, "bb_middle": middle, "bb_lower": lower, "bb_width": width, "bb_percent_b": percent_b}


def zscore(values: np.ndarray, mean: np.ndarray, std: np.ndarray, window: int) -> np.ndarray:
    """(value - mean) / std over `window` values; NaN where they are all equal (std 0, on both
    engines: pandas' rolling std is float noise there, not 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (values - mean) / std
    z[~np.isfinite(z) | flat_windows(values, window)] = np.nan  # constant window: std 0
    return z
