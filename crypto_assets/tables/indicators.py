"""Table of the technical indicators (one row per symbol, interval and bar)."""

from crypto_assets.indicators.columns import INDICATOR_COLUMNS
from crypto_assets.indicators.params import LOOKBACK_BARS
from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

TECHNICAL_INDICATORS = TableSpec(
    name="technical_indicators",
    description=(
        "Technical indicators per (symbol, interval) bar series, computed from `ohlcv_bars` with TA-Lib "
        "(pandas-ta-classic when TA-Lib is absent). Each hourly partition reads the previous "
        f"{LOOKBACK_BARS} bars of each interval (at least one UTC day) so its values equal the full-history "
        "computation; VWAP and OBV "
        "restart every UTC day. Values use only bars up to their own bar: a row is usable from `bar_end`. "
        "Only intervals of at most one hour are computed. See docs/indicators.md."
    ),
    columns=(
        Column("symbol", "str", "Ticker.", nullable=False),
        Column("bar_start", "datetime", "Open time of the bar the values belong to (UTC).", nullable=False),
        Column("interval", "str", "Bar length of the series (5min, 30min, 1h); periods count bars of it.",
               nullable=False),
        Column("bar_end", "datetime", "Close time of the bar (UTC): when the row's values become known."),
        *(Column(name, "float", description) for name, description in INDICATOR_COLUMNS),
        *common_columns(),
    ),
    primary_key=("symbol", "bar_start", "interval"),
    time_column="bar_start",
)

TABLES = [TECHNICAL_INDICATORS]
