"""Indicator parameters, and how much history each hourly partition must read.

Periods are in bars of the series' own interval (a 14-bar RSI on 5-minute bars spans 70
minutes). Every value is computed per (symbol, interval) series.

Why a lookback of LOOKBACK_PARTITIONS hours
-------------------------------------------
Recursive indicators (EMA, MACD, Wilder smoothing in RSI/ATR/ADX) remember their seed: TA-Lib
seeds an EMA(n) with the mean of the first n bars it is given, so a partition that reads only
a few earlier bars starts from a different seed than the full-history computation. The
difference shrinks by the smoothing factor every bar. The slowest to forget is EMA(50), which
keeps 49/51 of its state per bar (EMA(26) keeps 25/27, Wilder(14) 13/14), so after the 49 bars
its seed needs, a seed that is off by up to 100 % of the value is below TOLERANCE (1e-9
relative) after ceil(ln 1e-9 / ln(49/51)) = 519 more bars: REQUIRED_HISTORY_BARS = 568.
SMA(200) needs 199 earlier bars, fewer than that.

Dagster's lookback mapping counts hourly *partitions*, not bars, so the bar length matters:
600 partitions hold 600 one-hour bars (568 needed, leaving 32 hours of slack for gaps) and
7,200 five-minute bars (far more than needed: those values are bit-identical to the
full-history ones). Intervals longer than LOOKBACK_PARTITIONS / REQUIRED_HISTORY_BARS hours
(4h, 4D) cannot get enough bars from the window and are not computed by the hourly asset
(see `supported_interval`). docs/indicators.md discusses the read cost.
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

# Hourly partitions of `ohlcv_bars` read before each partition: 25 days.
LOOKBACK_PARTITIONS = 600
PARTITION_LENGTH = pd.Timedelta(hours=1)


def supported_interval(interval: str) -> bool:
    """True when LOOKBACK_PARTITIONS hours hold REQUIRED_HISTORY_BARS bars of this interval."""
    return pd.Timedelta(interval) * REQUIRED_HISTORY_BARS <= PARTITION_LENGTH * LOOKBACK_PARTITIONS
