"""Tables of the market-intelligence datasets: regimes, anomalies, the Fear & Greed index."""

from crypto_assets.intelligence.params import ANOMALY_WINDOW_HOURS, MARKET
from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

MARKET_REGIMES = TableSpec(
    name="market_regimes",
    description=(
        "Trend x volatility regime per symbol and hour, and market-wide (symbol `_MARKET`), from hourly closes "
        "of `ohlcv_bars` known at the hour's close only (`asof_time`). Deterministic, nothing fitted: trend from "
        "SMA(24h) vs SMA(168h) with a volatility-scaled sideways band, volatility from 24h realized volatility "
        "ranked against its own trailing week. Regime changes are flagged. See docs/intelligence.md."
    ),
    columns=(
        Column("symbol", "str", f"Ticker, or `{MARKET}` for the market-wide row.", nullable=False),
        Column("bar_start", "datetime", "Start of the hour the regime describes (UTC).", nullable=False),
        Column("scope", "str", "symbol or market."),
        Column("asof_time", "datetime", "bar_start + 1h: the close of the hour; nothing later is used."),
        Column("close", "float", "Hourly close (last bar of the finest interval <= 1h in the hour)."),
        Column("sma_fast", "float", "Mean of the last 24 hourly closes (NaN below 80 % coverage)."),
        Column("sma_slow", "float", "Mean of the last 168 hourly closes (NaN below 80 % coverage)."),
        Column("trend_score", "float", "sma_fast / sma_slow - 1 (market: median over symbols)."),
        Column("trend_band", "float", "Sideways band: 0.5 x realized_vol_24h (market: median)."),
        Column("realized_vol_24h", "float", "Sample std of the last 24 hourly log returns x sqrt(24)."),
        Column("vol_percentile", "float",
               "Mid-rank (0-1) of realized_vol_24h among the symbol's last 168 values, this hour included."),
        Column("trend_regime", "str", "bull, bear or sideways; empty while there is not enough history."),
        Column("volatility_regime", "str", "high (vol_percentile > 0.5) or low; empty without enough history."),
        Column("regime", "str", "trend_volatility, e.g. bull_high_vol; empty while unknown."),
        Column("previous_regime", "str", "The regime of the hour before (empty when unknown)."),
        Column("regime_changed", "bool", "regime differs from previous_regime (both known)."),
        Column("history_hours", "int", "Hourly closes in the 168h trend window (symbol rows)."),
        Column("symbols", "int", "Symbols with a known regime that the market row summarises."),
        Column("breadth_bull", "float", "Market row: share of those symbols in a bull trend."),
        Column("breadth_bear", "float", "Market row: share of those symbols in a bear trend."),
        Column("method", "str", "Method version (crypto_assets/intelligence/params.py)."),
        *common_columns(),
    ),
    primary_key=("symbol", "bar_start"),
    time_column="bar_start",
)

MARKET_ANOMALIES = TableSpec(
    name="market_anomalies",
    description=(
        "Hourly anomaly scores, each with its evidence: robust z-scores (median / MAD of the "
        f"{ANOMALY_WINDOW_HOURS} hours BEFORE the hour) of hourly log returns (price_jump), log volumes "
        "(volume_spike), the spread between exchanges' closes (exchange_divergence) and the count of news "
        "articles published (news_spike, market-wide). Every scored (symbol, kind, hour) is a row; `is_anomaly` "
        "marks those at or past the threshold, which also carry JSON `evidence`. See docs/intelligence.md."
    ),
    columns=(
        Column("symbol", "str", f"Ticker, or `{MARKET}` for market-wide measures (news).", nullable=False),
        Column("kind", "str", "price_jump, volume_spike, exchange_divergence or news_spike.", nullable=False),
        Column("bar_start", "datetime", "Start of the hour judged (UTC).", nullable=False),
        Column("asof_time", "datetime", "bar_start + 1h: when the hour's value is known."),
        Column("value", "float", "The hour's value: log return, ln(volume), relative spread, or article count."),
        Column("baseline", "float", "Median of the same measure over the trailing window (NaN: too few points)."),
        Column("scale", "float", "1.4826 x MAD of the trailing window (news: at least 1 article)."),
        Column("z", "float", "Robust z-score: (value - baseline) / scale; NaN when unknown or scale is 0."),
        Column("threshold", "float", "|z| at or above which an hour is an anomaly."),
        Column("direction", "str", "up or down (value above or below the baseline)."),
        Column("window_hours", "int", "Length of the trailing window (hours before bar_start)."),
        Column("window_points", "int", "Points of the window that had a value."),
        Column("is_anomaly", "bool", "|z| >= threshold (divergence: and spread >= 0.5 %)."),
        Column("evidence", "text", "JSON with the inputs behind an anomaly (closes, exchanges' closes, volume, "
               "articles); empty for rows that are not anomalies."),
        Column("method", "str", "Method version (crypto_assets/intelligence/params.py)."),
        *common_columns(),
    ),
    primary_key=("symbol", "kind", "bar_start"),
    time_column="bar_start",
)

FEAR_GREED_INDEX = TableSpec(
    name="fear_greed_index",
    description=(
        "The Alternative.me Crypto Fear & Greed Index (0 = extreme fear, 100 = extreme greed), one value per UTC "
        "day with its classification. `available_at` is when the value became known: the start of its day, "
        "when Alternative.me publishes it (see docs/intelligence.md)."
    ),
    columns=(
        Column("date", "date", "UTC day the value is for (the API's `timestamp`).", nullable=False),
        Column("value", "int", "Index value 0-100."),
        Column("classification", "str", "Alternative.me's label: Extreme Fear, Fear, Neutral, Greed, Extreme Greed."),
        Column("available_at", "datetime", "When the value became known (UTC)."),
        *common_columns(),
    ),
    primary_key=("date",),
    time_column="date",
)

TABLES = [MARKET_REGIMES, MARKET_ANOMALIES, FEAR_GREED_INDEX]
