"""Technical indicators as pure functions on a long DataFrame of bars (no Dagster needed).

`compute_indicators(bars)` gives every indicator for every bar; `compute_window(bars, start,
end)` computes over a window plus its lookback and keeps the window's rows; `read_history`
selects that lookback, counted in bars of each interval. The TA-Lib path is
used when the `ta-lib` wheel is importable, else pandas-ta-classic (same columns, same values
to ~1e-11). Definitions, session anchoring and the lookback choice: docs/indicators.md.
"""

from crypto_assets.indicators.columns import INDICATOR_COLUMNS, INDICATOR_NAMES
from crypto_assets.indicators.compute import (
    ENGINES,
    TALIB_AVAILABLE,
    WindowResult,
    compute_indicators,
    compute_window,
    default_engine,
)
from crypto_assets.indicators.history import HistoryRead, read_history
from crypto_assets.indicators.params import LOOKBACK_BARS, REQUIRED_HISTORY_BARS, lookback_span, supported_interval

__all__ = [
    "ENGINES",
    "INDICATOR_COLUMNS",
    "INDICATOR_NAMES",
    "HistoryRead",
    "LOOKBACK_BARS",
    "REQUIRED_HISTORY_BARS",
    "TALIB_AVAILABLE",
    "WindowResult",
    "compute_indicators",
    "compute_window",
    "default_engine",
    "lookback_span",
    "read_history",
    "supported_interval",
]
