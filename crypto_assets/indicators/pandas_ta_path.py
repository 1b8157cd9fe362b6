"""The fallback path: pandas-ta-classic's own (pure pandas) implementations.

Used when TA-Lib is not importable. pandas-ta-classic 0.8.x reproduces TA-Lib's seeding for
most indicators; where it does not, the call is arranged so that it does (the tests compare
every column with the TA-Lib path):
- MACD: TA-Lib seeds the fast EMA over the `fast` bars ending where the slow EMA starts, not
  over the series' first `fast` bars as pandas-ta's `macd()` does; built here from `ema()`.
- Stochastic: TA-Lib starts %K and %D on the same bar; %K is masked until %D exists.
- MFI: TA-Lib needs `length` price changes, one more bar than pandas-ta's rolling sum, treats
  a typical-price change within 1e-14 of the prices as no change (float noise, not a move) and
  gives 0 for a window without money flow; built here from pandas-ta's typical price.
- CCI: TA-Lib gives 0 for a flat window (mean deviation 0), where pandas-ta divides 0 by 0.
~40 ms per series (pandas overhead per call), about 15x slower than the TA-Lib path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas_ta_classic as ta

from crypto_assets.indicators import params as p
from crypto_assets.indicators.series import SeriesArrays, over_finite_runs
from crypto_assets.indicators.shared import bollinger, zscore


def _array(result, n: int) -> np.ndarray:
    """pandas-ta returns None when the series is shorter than the period."""
    if result is None:
        return np.full(n, np.nan)
    return np.array(result, dtype="float64")  # a writable copy


def _column(frame: pd.DataFrame | None, prefix: str, n: int) -> np.ndarray:
    if frame is None:
        return np.full(n, np.nan)
    return frame[[c for c in frame.columns if c.startswith(prefix)][0]].to_numpy(dtype="float64")


def _macd(close: pd.Series) -> dict[str, np.ndarray]:
    n = len(close)
    if n < p.MACD_SLOW:
        return {k: np.full(n, np.nan) for k in ("macd", "macd_signal", "macd_hist")}
    fast = ta.ema(close.iloc[p.MACD_SLOW - p.MACD_FAST:], p.MACD_FAST, talib=False).reindex(close.index)
    line = fast - ta.ema(close, p.MACD_SLOW, talib=False)
    signal = ta.ema(line.dropna(), p.MACD_SIGNAL, talib=False)
    signal = _array(None if signal is None else signal.reindex(close.index), n)
    line = np.where(np.isnan(signal), np.nan, line.to_numpy())
    return {"macd": line, "macd_signal": signal, "macd_hist": line - signal}


# TA-Lib's TA_EPSILON: a typical-price change within this share of |tp| + |previous tp| is a tie
# (TA_IS_ZERO_SCALED in TA-Lib's MFI), i.e. a few ulp of float rounding, not a price move.
TIE_EPSILON = 1e-14


def _mfi(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """MFI with TA-Lib's rules, on pandas-ta's typical price and pandas rolling sums.

    `ta.mfi` compares consecutive typical prices exactly, so two prices that are equal in decimal
    but differ by float rounding (H, L, C summed in a different order) count as a rise; TA-Lib
    counts no flow for a change within TIE_EPSILON of the prices. A window that received no flow
    at all is 0 in TA-Lib (0/0 in `ta.mfi`), and TA-Lib clamps the positive share into [0, 1].
    """
    n = len(close)
    out = np.full(n, np.nan)
    if n <= p.MFI_BARS:
        return out
    typical = _array(ta.hlc3(pd.Series(high), pd.Series(low), pd.Series(close), talib=False), n)
    change = np.diff(typical)
    tie = np.abs(change) <= TIE_EPSILON * (np.abs(typical[1:]) + np.abs(typical[:-1]))
    flow = np.where(tie, 0.0, typical[1:] * volume[1:])
    rolling = lambda a: pd.Series(a).rolling(p.MFI_BARS).sum().to_numpy()  # noqa: E731
    positive = rolling(np.where(change < 0, 0.0, flow))
    negative = rolling(np.where(change < 0, flow, 0.0))
    empty = rolling((flow != 0).astype("float64")) == 0  # no flow in the window: exactly 0
    total = positive + negative
    with np.errstate(invalid="ignore", divide="ignore"):
        mfi = 100.0 * np.clip(positive, 0.0, total) / total
    out[1:] = np.where(empty | (total <= 0), 0.0, mfi)
    out[: p.MFI_BARS] = np.nan
    return out


def _cci(high: pd.Series, low: pd.Series, close: pd.Series) -> np.ndarray:
    """pandas-ta's CCI, 0 where its mean deviation is 0 (a flat window), as in TA-Lib."""
    n = len(close)
    cci = _array(ta.cci(high, low, close, p.CCI_BARS, talib=False), n)
    cci[p.CCI_BARS - 1:][~np.isfinite(cci[p.CCI_BARS - 1:])] = 0.0
    return cci


def _volume_zscore(volume: np.ndarray) -> np.ndarray:
    v, n = pd.Series(volume), len(volume)
    mean = _array(ta.sma(v, p.VOLUME_Z_BARS, talib=False), n)
    std = _array(ta.stdev(v, p.VOLUME_Z_BARS, ddof=0, talib=False), n)
    return zscore(volume, mean, std)


def series_indicators(s: SeriesArrays) -> dict[str, np.ndarray]:
    n = len(s.close)
    h, l, c = (pd.Series(a) for a in (s.high, s.low, s.close))  # noqa: E741
    out: dict[str, np.ndarray] = {}

    out[f"volatility_{p.VOLATILITY_BARS}"] = _array(
        ta.stdev(pd.Series(s.log_return_1), p.VOLATILITY_BARS, ddof=1, talib=False), n
    )
    out[f"rsi_{p.RSI_BARS}"] = _array(ta.rsi(c, p.RSI_BARS, talib=False), n)
    out.update(_macd(c))

    bands = ta.bbands(c, p.BB_BARS, p.BB_STDDEVS, ddof=0, mamode="sma", talib=False)
    out.update(bollinger(s.close, _column(bands, "BBU", n), _column(bands, "BBM", n), _column(bands, "BBL", n)))

    for length in p.SMA_BARS:
        out[f"sma_{length}"] = _array(ta.sma(c, length, talib=False), n)
    for length in p.EMA_BARS:
        out[f"ema_{length}"] = _array(ta.ema(c, length, talib=False), n)
    out[f"atr_{p.ATR_BARS}"] = _array(ta.atr(h, l, c, p.ATR_BARS, talib=False), n)

    stoch = ta.stoch(h, l, c, k=p.STOCH_FASTK_BARS, d=p.STOCH_D_BARS, smooth_k=p.STOCH_SLOWK_BARS, talib=False)
    k, d = _column(stoch, "STOCHk", n), _column(stoch, "STOCHd", n)
    out["stoch_k"], out["stoch_d"] = np.where(np.isnan(d), np.nan, k), d

    out[f"adx_{p.ADX_BARS}"] = _column(ta.adx(h, l, c, p.ADX_BARS, talib=False), "ADX", n)
    out[f"cci_{p.CCI_BARS}"] = _cci(h, l, c)

    out[f"mfi_{p.MFI_BARS}"] = over_finite_runs(_mfi, s.volume, s.high, s.low, s.close, s.volume)
    out[f"volume_zscore_{p.VOLUME_Z_BARS}"] = over_finite_runs(_volume_zscore, s.volume, s.volume)
    return out
