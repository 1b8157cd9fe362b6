"""Tables of the reference and price datasets."""

from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

COIN_UNIVERSE = TableSpec(
    name="coin_universe",
    description="Symbols the pipeline tracks, with their CoinGecko ids, names and aliases.",
    columns=(
        Column("symbol", "str", "Upper-case ticker, the key used by every other table.", nullable=False),
        Column("coingecko_id", "str", "CoinGecko coin id (e.g. bitcoin)."),
        Column("name", "str", "Display name."),
        Column("aliases", "text", "Other names used in news, separated by '|'."),
        Column("market_cap_rank", "int", "CoinGecko market-cap rank when last refreshed; empty if never refreshed."),
        *common_columns(),
    ),
    primary_key=("symbol",),
)

PRICE_OBSERVATIONS = TableSpec(
    name="price_observations",
    description="Spot USD price observations as published by the provider (not candles).",
    columns=(
        Column("symbol", "str", "Ticker.", nullable=False),
        Column("observed_at", "datetime", "Provider timestamp of the price (UTC).", nullable=False),
        Column("coingecko_id", "str", "Provider coin id."),
        Column("price_usd", "float", "Price in USD."),
        Column("market_cap_usd", "float", "Market capitalisation in USD, when given."),
        Column("volume_24h_usd", "float", "Trailing 24h traded volume in USD, when given."),
        Column("endpoint", "str", "Provider endpoint: coins/markets (live snapshot) or market_chart/range (history)."),
        *common_columns(),
    ),
    primary_key=("symbol", "observed_at"),
    time_column="observed_at",
)

OHLCV_BARS = TableSpec(
    name="ohlcv_bars",
    description=(
        "OHLC bars per symbol. `method` says where they come from: `coingecko_ohlc` (the provider's "
        "candles, whose timestamps are close times) or `resampled_observations` (first/max/min/last of "
        "the price observations inside the bar). Volume is empty when the source gives no per-bar volume."
    ),
    columns=(
        Column("symbol", "str", "Ticker.", nullable=False),
        Column("bar_start", "datetime", "Bar open time (UTC); the bar covers [bar_start, bar_end).", nullable=False),
        Column("interval", "str", "Bar length as a pandas offset alias: 5min, 30min, 1h, 4h, 4D.", nullable=False),
        Column("bar_end", "datetime", "Bar close time (UTC): when the bar's close is known."),
        Column("open", "float", "First price of the bar."),
        Column("high", "float", "Highest price of the bar (of the observations, for resampled bars)."),
        Column("low", "float", "Lowest price of the bar (of the observations, for resampled bars)."),
        Column("close", "float", "Last price of the bar."),
        Column("volume", "float", "Traded volume in the bar; empty when the source does not give it."),
        Column("n_observations", "int", "Observations the bar was resampled from (empty for provider candles)."),
        Column("method", "str", "coingecko_ohlc or resampled_observations."),
        *common_columns(),
    ),
    primary_key=("symbol", "bar_start", "interval"),
    time_column="bar_start",
)

TABLES = [COIN_UNIVERSE, PRICE_OBSERVATIONS, OHLCV_BARS]
