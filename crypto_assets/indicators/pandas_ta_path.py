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
- RSI, ADX, Stochastic: TA-Lib's rules for windows where nothing moved (RSI 0; an undefined DX
  counts 0 in the first ADX and then leaves ADX unchanged; fast %K 0 without range), where
  pandas-ta gives NaN or divides by float epsilon. See "Flat windows" in docs/indicators.md.
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


def _rsi(close: pd.Series) -> np.ndarray:
    """pandas-ta's RSI, 0 where it divides 0 by 0 (no gain and no loss yet: a series flat since
    its start), as TA-Lib does."""
    rsi = _array(ta.rsi(close, p.RSI_BARS, talib=False), len(close))
    rsi[p.RSI_BARS:][~np.isfinite(rsi[p.RSI_BARS:])] = 0.0
    return rsi


def _stoch(high: pd.Series, low: pd.Series, close: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Slow %K and %D with TA-Lib's rule for a window without range (highest high = lowest low):
    fast %K = 0 there. pandas-ta divides by float epsilon instead, which gives 0 only while the
    close equals that low, and ~1e16 for a bar whose close lies outside its own high-low."""
    n = len(close)
    nan = np.full(n, np.nan)
    if n < p.STOCH_FASTK_BARS:
        return nan, nan
    lowest = low.rolling(p.STOCH_FASTK_BARS).min()
    span = (high.rolling(p.STOCH_FASTK_BARS).max() - lowest).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = np.where(span != 0, (100 * (close - lowest)).to_numpy() / span, 0.0)
    fast[: p.STOCH_FASTK_BARS - 1] = np.nan
    fast = pd.Series(fast, index=close.index)
    k = ta.sma(fast.iloc[p.STOCH_FASTK_BARS - 1:], p.STOCH_SLOWK_BARS, talib=False)
    if k is None:
        return nan, nan
    d = ta.sma(k.dropna(), p.STOCH_D_BARS, talib=False)
    if d is None:
        return nan, nan
    k, d = _array(k.reindex(close.index), n), _array(d.reindex(close.index), n)
    return np.where(np.isnan(d), np.nan, k), d  # TA-Lib starts %K and %D on the same bar


def _adx(high: pd.Series, low: pd.Series, close: pd.Series) -> np.ndarray:
    """ADX from pandas-ta's +DI/-DI with TA-Lib's rule where DX is undefined (no true range, or
    no directional movement: +DI + -DI = 0): it counts 0 in the first ADX (the mean of the
    first ADX_BARS DX) and leaves ADX unchanged afterwards. pandas-ta's own ADX is NaN there
    and, after a flat start, stays off TA-Lib for the rest of the series."""
    n, length = len(close), p.ADX_BARS
    out = np.full(n, np.nan)
    frame = ta.adx(high, low, close, length, talib=False)
    if frame is None or n < 2 * length:
        return out
    plus, minus = _column(frame, "DMP", n), _column(frame, "DMN", n)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = 100.0 * np.abs(plus - minus) / (plus + minus)
    dx[~np.isfinite(dx)] = np.nan
    first = 2 * length - 1  # TA-Lib: the first DX is at bar `length`, the first ADX at 2 * length - 1
    values = dx.copy()
    values[:first] = np.nan
    values[first] = np.nansum(dx[length:first + 1]) / length
    # Wilder's smoothing over the defined DX only: an undefined DX carries the previous ADX.
    out[first:] = pd.Series(values).ewm(alpha=1.0 / length, adjust=False, ignore_na=True).mean().to_numpy()[first:]
    return out


def _volume_zscore(volume: np.ndarray) -> np.ndarray:
    v, n = pd.Series(volume), len(volume)
    mean = _array(ta.sma(v, p.VOLUME_Z_BARS, talib=False), n)
    std = _array(ta.stdev(v, p.VOLUME_Z_BARS, ddof=0, talib=False), n)
    return zscore(volume, mean, std, p.VOLUME_Z_BARS)


def series_indicators(s: SeriesArrays) -> dict[str, np.ndarray]:
    n = len(s.close)
    h, l, c = (pd.Series(a) for a in (s.high, s.low, s.close))  # noqa: E741
    out: dict[str, np.ndarray] = {}

    out[f"volatility_{p.VOLATILITY_BARS}"] = _array(
        ta.stdev(pd.Series(s.log_return_1), p.VOLATILITY_BARS, ddof=1, talib=False), n
    )
    out[f"rsi_{p.RSI_BARS}"] = _rsi(c)
    out.update(_macd(c))

    bands = ta.bbands(c, p.BB_BARS, p.BB_STDDEVS, ddof=0, mamode="sma", talib=False)
    out.update(bollinger(s.close, _column(bands, "BBU", n), _column(bands, "BBM", n), _column(bands, "BBL", n)))

    for length in p.SMA_BARS:
        out[f"sma_{length}"] = _array(ta.sma(c, length, talib=False), n)
    for length in p.EMA_BARS:
        out[f"ema_{length}"] = _array(ta.ema(c, length, talib=False), n)
    out[f"atr_{p.ATR_BARS}"] = _array(ta.atr(h, l, c, p.ATR_BARS, talib=False), n)

    out["stoch_k"], out["stoch_d"] = _stoch(h, l, c)
    out[f"adx_{p.ADX_BARS}"] = _adx(h, l, c)
    out[f"cci_{p.CCI_BARS}"] = _cci(h, l, c)

    out[f"mfi_{p.MFI_BARS}"] = over_finite_runs(_mfi, s.volume, s.high, s.low, s.close, s.volume)
    out[f"volume_zscore_{p.VOLUME_Z_BARS}"] = over_finite_runs(_volume_zscore, s.volume, s.volume)
    return out
