"""Consistency rules for provider bars (one row with open/high/low/close).

A bar is a record of one session: its close was traded inside that session, so it lies within
its own low..high. A close outside that range means the provider put a value from elsewhere
(another session, a stale settlement) into the bar. Such a bar is not stored; it goes to the
quarantine with the reason below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CLOSE_OUTSIDE_RANGE = "close outside the bar's own high-low range"
WEEKEND_BAR = "weekend bar (market closed; no weekend rows)"

# Yahoo stores prices as float32 and sends them widened to float64 (1518.0999755859375): a
# close printed equal to the high can differ from it by float32 rounding, ~6e-8 of the price.
# The allowance is 1e-6 of the price, far below any real tick (a 0.01 tick on a 10,000 price
# is 1e-6 of it, and a stale close is typically many ticks away).
RANGE_TOLERANCE = 1e-6


def close_outside_range(close, high, low, tolerance: float = RANGE_TOLERANCE) -> pd.Series:
    """True where close < low or close > high by more than `tolerance` of the price.

    Bars without a usable high or low are not judged (False): the rule needs both.
    """
    close, high, low = (pd.Series(x, dtype="float64") for x in (close, high, low))
    slack = tolerance * close.abs()
    with np.errstate(invalid="ignore"):
        outside = (close < low - slack) | (close > high + slack)
    return (outside & high.notna() & low.notna() & close.notna()).astype(bool)


def on_weekend(local_days: pd.Series) -> pd.Series:
    """True for Saturdays and Sundays (`local_days`: dates in the market's own timezone)."""
    days = pd.to_datetime(pd.Series(local_days))
    return (days.dt.day_of_week >= 5).fillna(False).astype(bool)
