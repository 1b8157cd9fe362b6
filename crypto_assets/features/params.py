"""Parameters of the feature table: windows, as-of lookbacks, staleness limits, pairs.

Everything that decides which columns exist or how far back an input is read lives here, so
the data dictionary, the table schema and the computation agree by construction.
"""

from __future__ import annotations

import pandas as pd

# Sentiment windows end at the row's as-of time: items with as_of - window < published_at <= as_of.
SENTIMENT_WINDOWS: dict[str, pd.Timedelta] = {
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "24h": pd.Timedelta(hours=24),
}
# Hourly partitions of `sentiment_scores` read before the run's window: the longest window.
SENTIMENT_LOOKBACK_PARTITIONS = 24

# Macro: a value is used only while its observation is at most this old at the as-of time
# (weekends, holidays and publication lags fit inside; a feed stuck for longer shows NaN,
# never a silently repeated old value). Keyed by the catalog's `frequency`.
MACRO_MAX_AGE: dict[str, pd.Timedelta] = {
    "daily": pd.Timedelta(days=14),  # H.10 broad dollar (DTWEXBGS) is published weekly, ~1 week late
    "weekly": pd.Timedelta(days=21),
    "monthly": pd.Timedelta(days=100),  # CPI/unemployment: period start + ~6 weeks to release + a month
    "quarterly": pd.Timedelta(days=250),  # GDP: quarter start + ~4 months to release + a quarter
}
# The daily change compares with the previous observation only when that one is at most
# max age + this gap old (a longer hole in the data gives NaN, not a change over the hole).
MACRO_PREV_GAP: dict[str, pd.Timedelta] = {
    "daily": pd.Timedelta(days=7),
    "weekly": pd.Timedelta(days=14),
    "monthly": pd.Timedelta(days=62),
    "quarterly": pd.Timedelta(days=123),
}
# Observations read before the run's window (by observation date): the longest max age + gap.
MACRO_READ_LOOKBACK = max(MACRO_MAX_AGE[f] + MACRO_PREV_GAP[f] for f in MACRO_MAX_AGE)

# On-chain: a day's value is usable from the end of that UTC day; at most 7 days old.
ONCHAIN_MAX_AGE = pd.Timedelta(days=7)
ONCHAIN_PREV_GAP = pd.Timedelta(days=3)
ONCHAIN_READ_LOOKBACK = ONCHAIN_MAX_AGE + ONCHAIN_PREV_GAP

# Lineage (Dagster dependency) windows of the daily inputs, in HOURLY partitions because a
# TimeWindowPartitionMapping offset counts partitions of the downstream (hourly) asset here.
# They drive the graph and automation; the reads above use the explicit as-of windows.
MACRO_LINEAGE_DAYS = 62  # the macro_series trailing schedule re-fetches 62 days
ONCHAIN_LINEAGE_DAYS = 10

# Cross-sectional reference symbol.
REFERENCE_SYMBOL = "BTC"

# Indicator levels a close is compared with: close / level - 1.
CLOSE_RATIO_LEVELS = ("sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "ema_50", "vwap_session")
# Moving-average pairs: fast / slow - 1.
MA_PAIRS = (("sma_20", "sma_50"), ("sma_50", "sma_200"))

# Cross-asset features from macro series known at the as-of time: (name, kind, a, b).
# ratio: a / b; return_spread: daily change of a - daily change of b; difference: a - b.
CROSS_ASSET = (
    ("xa_qqq_spy_ratio", "ratio", "QQQ", "SPY"),
    ("xa_qqq_spy_return_spread", "return_spread", "QQQ", "SPY"),
    ("xa_hyg_tlt_ratio", "ratio", "HYG", "TLT"),
    ("xa_hyg_tlt_return_spread", "return_spread", "HYG", "TLT"),
    ("xa_gld_spy_ratio", "ratio", "GLD", "SPY"),
    ("xa_eem_spy_ratio", "ratio", "EEM", "SPY"),
    ("xa_gold_oil_ratio", "ratio", "GOLD", "OIL"),
    ("xa_us_curve_10y_2y", "difference", "DGS10", "DGS2"),
)
