"""The fast path: TA-Lib's C functions on each series' numpy arrays.

Calling `talib.<FUNC>` directly (rather than the pandas-ta accessor, which wraps every call in
pandas Series, validation and naming) costs a few microseconds per call, and the values are
TA-Lib's by construction.
"""

from __future__ import annotations

import numpy as np
import talib

from crypto_assets.indicators import params as p
from crypto_assets.indicators.series import SeriesArrays, over_finite_runs
from crypto_assets.indicators.shared import bollinger, zscore

_SMA = talib.MA_Type.SMA
_SAMPLE_STD = np.sqrt(p.VOLATILITY_BARS / (p.VOLATILITY_BARS - 1))  # population -> sample (ddof=1)


def _volume_zscore(volume: np.ndarray) -> np.ndarray:
    return zscore(volume, talib.SMA(volume, p.VOLUME_Z_BARS), talib.STDDEV(volume, p.VOLUME_Z_BARS, 1.0),
                  p.VOLUME_Z_BARS)


def series_indicators(s: SeriesArrays) -> dict[str, np.ndarray]:
    h, l, c, v = s.high, s.low, s.close, s.volume  # noqa: E741  (open is used by no TA-Lib call here)
    out: dict[str, np.ndarray] = {}

    if len(c) > 1:  # TA-Lib refuses an all-NaN input (a one-bar series has no return)
        out[f"volatility_{p.VOLATILITY_BARS}"] = talib.STDDEV(s.log_return_1, p.VOLATILITY_BARS, 1.0) * _SAMPLE_STD
    out[f"rsi_{p.RSI_BARS}"] = talib.RSI(c, p.RSI_BARS)
    out["macd"], out["macd_signal"], out["macd_hist"] = talib.MACD(c, p.MACD_FAST, p.MACD_SLOW, p.MACD_SIGNAL)

    out.update(bollinger(c, *talib.BBANDS(c, p.BB_BARS, p.BB_STDDEVS, p.BB_STDDEVS, _SMA)))

    for n in p.SMA_BARS:
        out[f"sma_{n}"] = talib.SMA(c, n)
    for n in p.EMA_BARS:
        out[f"ema_{n}"] = talib.EMA(c, n)
    out[f"atr_{p.ATR_BARS}"] = talib.ATR(h, l, c, p.ATR_BARS)
    out["stoch_k"], out["stoch_d"] = talib.STOCH(
        h, l, c,
        fastk_period=p.STOCH_FASTK_BARS,
        slowk_period=p.STOCH_SLOWK_BARS, slowk_matype=_SMA,
        slowd_period=p.STOCH_D_BARS, slowd_matype=_SMA,
    )
    out[f"adx_{p.ADX_BARS}"] = talib.ADX(h, l, c, p.ADX_BARS)
    out[f"cci_{p.CCI_BARS}"] = talib.CCI(h, l, c, p.CCI_BARS)

    out[f"mfi_{p.MFI_BARS}"] = over_finite_runs(lambda *a: talib.MFI(*a, p.MFI_BARS), v, h, l, c, v)
    out[f"volume_zscore_{p.VOLUME_Z_BARS}"] = over_finite_runs(_volume_zscore, v, v)
    return out
