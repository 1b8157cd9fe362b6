"""Indicator parameters, and how much history each hourly partition must read.

Periods are in bars of the series' own interval (a 14-bar RSI on 5-minute bars spans 70
minutes). Every value is computed per (symbol, interval) series.

How much history a partition reads: LOOKBACK_BARS bars of each interval
-------------------------------------------------------------------------
Recursive indicators (EMA, MACD, Wilder smoothing in RSI/ATR/ADX) remember their seed: TA-Lib
seeds an EMA(n) with the mean of the first n bars it is given, so a partition that reads only
a few earlier bars starts from a different seed than the full-history computation. The
difference shrinks by the smoothing factor every *bar*. The slowest to forget is EMA(50), which
keeps 49/51 of its state per bar (EMA(26) keeps 25/27, Wilder(14) 13/14), so after the 49 bars
its seed needs, a seed that is off by up to 100 % of the value is below TOLERANCE (1e-9
relative) after ceil(ln 1e-9 / ln(49/51)) = 519 more bars: REQUIRED_HISTORY_BARS = 568.
SMA(200) needs 199 earlier bars, fewer than that.

The need is a number of bars, whatever their length, so the read is counted in bars of each
interval (`lookback_span`): LOOKBACK_BARS = 600 bars (568 plus 32 bars of slack for missing
bars) before the window, and never less than one UTC day, the session OBV and VWAP restart
on. A 1h series reads 600 hours, a 5-minute series 50 hours (not 600 hours: 12x fewer rows).
A series that still holds fewer than REQUIRED_HISTORY_BARS usable bars in that span (gaps)
gets its latest missing bars from up to TOP_UP_SPANS spans further back (the asset's
`read_history`); a series that has no more history than that (a new coin) is computed from
its first bar, exactly as the full history does.

Only intervals of at most MAX_INTERVAL (1h) are computed by the hourly asset
(`supported_interval`). The bar-counted read could serve 4h and 4D candles too (600 bars:
100 days, 6.6 years), but computing them would add rows that `ml_features` would then use
for symbols without finer bars: a separate decision, see docs/indicators.md.
"""

from __future__ import annotations

from math import ceil, log

import pandas as pd

RETURN_BARS = (1, 4, 24)
VOLATILITY_BARS = 24
RSI_BARS = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BB_BARS, BB_STDDEVS = 20, 2.0
SMA_BARS = (20, 50, 200)
EMA_BARS = (12, 26, 50)
ATR_BARS = 14
STOCH_FASTK_BARS, STOCH_SLOWK_BARS, STOCH_D_BARS = 14, 3, 3
ADX_BARS = 14
CCI_BARS = 20
MFI_BARS = 14
VOLUME_Z_BARS = 20

# Partition-local values must equal full-history values to this relative error.
TOLERANCE = 1e-9


def seed_decay_bars(kept_per_bar: float, tolerance: float = TOLERANCE) -> int:
    """Bars after which a recursion keeping `kept_per_bar` of its state forgets its seed."""
    return ceil(log(tolerance) / log(kept_per_bar))


_SLOWEST_EMA = max(EMA_BARS)
REQUIRED_HISTORY_BARS = max(
    _SLOWEST_EMA - 1 + seed_decay_bars(1 - 2 / (_SLOWEST_EMA + 1)),  # 49 + 519 = 568
    max(SMA_BARS) - 1,
)

# Bars of each interval read before a partition: the need plus slack for a few missing bars.
LOOKBACK_BARS = 600
# VWAP and OBV restart each UTC day: the read always reaches back to the start of the day.
SESSION_LENGTH = pd.Timedelta(days=1)
# A series short of REQUIRED_HISTORY_BARS in its span is topped up from this many spans further back.
TOP_UP_SPANS = 4
# Longest bar interval the hourly asset computes (see the module docstring).
MAX_INTERVAL = pd.Timedelta(hours=1)


def lookback_span(interval: str) -> pd.Timedelta:
    """Time before a window that holds LOOKBACK_BARS bars of `interval` (at least one UTC day)."""
    return max(pd.Timedelta(interval) * LOOKBACK_BARS, SESSION_LENGTH)


def supported_interval(interval: str) -> bool:
    """True for the intervals the hourly asset computes: at most MAX_INTERVAL."""
    return pd.Timedelta(interval) <= MAX_INTERVAL
