"""The indicator columns, in table order, with the descriptions the data dictionary shows.

Both computation paths (TA-Lib and pandas-ta-classic) produce exactly these columns.
"""

from __future__ import annotations

from crypto_assets.indicators import params as p

_WARMUP = "NaN until the series has enough bars."


def _returns() -> list[tuple[str, str]]:
    cols = []
    for n in p.RETURN_BARS:
        cols.append((f"return_{n}", f"Simple return over {n} bar(s): close / close {n} bar(s) earlier - 1 "
                                    f"(TA-Lib ROCP). Bars, not clock time: a gap is not filled. {_WARMUP}"))
    for n in p.RETURN_BARS:
        cols.append((f"log_return_{n}", f"Log return over {n} bar(s): ln(close / close {n} bar(s) earlier). "
                                        f"{_WARMUP}"))
    return cols


INDICATOR_COLUMNS: tuple[tuple[str, str], ...] = (
    *_returns(),
    (f"volatility_{p.VOLATILITY_BARS}",
     f"Sample standard deviation (ddof=1) of the 1-bar log returns over the last {p.VOLATILITY_BARS} bars, "
     f"not annualised. {_WARMUP}"),
    (f"rsi_{p.RSI_BARS}",
     f"Relative Strength Index, {p.RSI_BARS} bars, Wilder smoothing (TA-Lib RSI), 0-100. "
     f"TA-Lib gives 0 for a window without any price change. {_WARMUP}"),
    ("macd",
     f"MACD line: EMA({p.MACD_FAST}) - EMA({p.MACD_SLOW}) of close (TA-Lib MACD). "
     f"NaN until the signal line exists, as in TA-Lib."),
    ("macd_signal", f"MACD signal line: EMA({p.MACD_SIGNAL}) of the MACD line (TA-Lib MACD). {_WARMUP}"),
    ("macd_hist", f"MACD histogram: macd - macd_signal. {_WARMUP}"),
    ("bb_upper", f"Upper Bollinger band: SMA({p.BB_BARS}) + {p.BB_STDDEVS:g} population standard deviations "
                 f"of close over {p.BB_BARS} bars (TA-Lib BBANDS). {_WARMUP}"),
    ("bb_middle", f"Middle Bollinger band: SMA({p.BB_BARS}) of close. {_WARMUP}"),
    ("bb_lower", f"Lower Bollinger band: SMA({p.BB_BARS}) - {p.BB_STDDEVS:g} population standard deviations. "
                 f"{_WARMUP}"),
    ("bb_width", f"Bollinger band width as a fraction of the middle band: (upper - lower) / middle. {_WARMUP}"),
    ("bb_percent_b", "Bollinger %b: (close - lower) / (upper - lower); 0 at the lower band, 1 at the upper. "
                     "NaN when the bands coincide (flat window)."),
    *((f"sma_{n}", f"Simple moving average of close over {n} bars (TA-Lib SMA). {_WARMUP}") for n in p.SMA_BARS),
    *((f"ema_{n}", f"Exponential moving average of close, {n} bars, alpha = 2/({n}+1), seeded with the "
                   f"SMA of the series' first {n} bars (TA-Lib EMA). {_WARMUP}") for n in p.EMA_BARS),
    (f"atr_{p.ATR_BARS}", f"Average True Range, {p.ATR_BARS} bars, Wilder smoothing (TA-Lib ATR), in price "
                          f"units. {_WARMUP}"),
    ("stoch_k", f"Stochastic %K (slow): SMA({p.STOCH_SLOWK_BARS}) of the fast %K over {p.STOCH_FASTK_BARS} "
                f"bars (TA-Lib STOCH {p.STOCH_FASTK_BARS},{p.STOCH_SLOWK_BARS},{p.STOCH_D_BARS}), 0-100. "
                f"{_WARMUP}"),
    ("stoch_d", f"Stochastic %D: SMA({p.STOCH_D_BARS}) of stoch_k, 0-100. {_WARMUP}"),
    (f"adx_{p.ADX_BARS}", f"Average Directional Index, {p.ADX_BARS} bars, Wilder smoothing (TA-Lib ADX), 0-100. "
                          f"{_WARMUP}"),
    (f"cci_{p.CCI_BARS}", f"Commodity Channel Index, {p.CCI_BARS} bars, on the typical price (H+L+C)/3 with "
                          f"the 0.015 constant (TA-Lib CCI). {_WARMUP}"),
    (f"mfi_{p.MFI_BARS}", f"Money Flow Index, {p.MFI_BARS} bars (TA-Lib MFI), 0-100. NaN where any bar of the "
                          f"window has no volume. {_WARMUP}"),
    ("obv_session", "On-Balance Volume anchored to the UTC day: restarts at each UTC midnight with the "
                    "first bar's volume (TA-Lib OBV run per day), then adds/subtracts each bar's volume as "
                    "the close rises/falls. NaN for the rest of the day after a bar without volume."),
    ("vwap_session", "Volume-weighted average of the typical price (H+L+C)/3 since the start of the UTC day "
                     "(session-anchored, resets at 00:00 UTC). NaN for the rest of the day after a bar "
                     "without volume, and while the day's volume is 0."),
    (f"volume_zscore_{p.VOLUME_Z_BARS}",
     f"(volume - mean) / population standard deviation of volume over the last {p.VOLUME_Z_BARS} bars "
     f"including this one. NaN where a bar of the window has no volume or the volume is constant. {_WARMUP}"),
)

INDICATOR_NAMES: tuple[str, ...] = tuple(name for name, _ in INDICATOR_COLUMNS)

# Computed the same way by both paths, from whole-frame arrays (not per series engine call).
SHARED_COLUMNS = (
    *(f"return_{n}" for n in p.RETURN_BARS),
    *(f"log_return_{n}" for n in p.RETURN_BARS),
    "obv_session",
    "vwap_session",
)
