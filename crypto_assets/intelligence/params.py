"""Parameters of the market-intelligence methods (regimes, anomalies). Changing one changes
results: bump METHOD_VERSION so stored rows say which method made them."""

from __future__ import annotations

import pandas as pd

HOUR = pd.Timedelta(hours=1)
MARKET = "_MARKET"  # the symbol of market-wide rows (never a coin ticker: tickers have no underscore)

# -- regimes --------------------------------------------------------------------------------
REGIME_METHOD_VERSION = "regime-v1"
TREND_FAST_HOURS = 24  # SMA of the last 24 hourly closes
TREND_SLOW_HOURS = 168  # SMA of the last 7 days of hourly closes
# Sideways band: |sma_fast / sma_slow - 1| below TREND_BAND_SIGMAS x the 24h realized volatility.
TREND_BAND_SIGMAS = 0.5
VOL_WINDOW_HOURS = 24  # realized volatility: std of the last 24 hourly log returns, x sqrt(24)
VOL_RANK_HOURS = 168  # ... ranked against its own values of the last 7 days (this hour included)
HIGH_VOL_PERCENTILE = 0.5  # high volatility: above the median of its own trailing week
MIN_COVERAGE = 0.8  # a window needs at least 80 % of its points, else the value is unknown
# Hourly closes a partition reads before its first hour h: the regime of h - 1 (for
# `previous_regime`) ranks the volatility of h - 168 .. h - 1, whose 24 returns reach back to the
# close of h - 192. (A test checks that one hour less changes results.)
REGIME_LOOKBACK_HOURS = max(TREND_SLOW_HOURS, VOL_RANK_HOURS + VOL_WINDOW_HOURS)

# -- anomalies ------------------------------------------------------------------------------
ANOMALY_METHOD_VERSION = "anomaly-v1"
ANOMALY_WINDOW_HOURS = 168  # the baseline: the 7 days of hours BEFORE the hour judged
ANOMALY_Z = 6.0  # |robust z| at or above this is an anomaly
MAD_SCALE = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal data
# News counts are small integers whose MAD is often 0: the scale is never below one article.
NEWS_MIN_SCALE = 1.0
# Divergence between exchanges is only reported when the spread is also economically visible.
DIVERGENCE_MIN_SPREAD = 0.005
ANOMALY_LOOKBACK_HOURS = ANOMALY_WINDOW_HOURS + 1  # + one close for the first return
