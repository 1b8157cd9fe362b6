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
        "OHLC bars per symbol. `method` says where they come from: `exchange` (closed exchange candles with "
        "traded volume, the primary source), `coingecko_ohlc` (the provider's candles, whose timestamps are "
        "close times) or `resampled_observations` (first/max/min/last of the price observations inside the "
        "bar; the fallback for coins no configured exchange lists). Volume is empty when the source gives no "
        "per-bar volume."
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
        Column("method", "str", "exchange, coingecko_ohlc or resampled_observations."),
        Column("exchange", "str", "Exchange whose candle this is (method exchange; see docs/exchanges.md for which wins)."),
        Column("quote", "str", "Quote currency of the exchange market (USDT, USD, USDC); empty for CoinGecko USD bars."),
        Column("quote_volume", "float", "Traded volume in the quote currency, where the exchange gives it."),
        Column("trade_count", "int", "Trades in the bar, where the exchange gives it."),
        *common_columns(),
    ),
    primary_key=("symbol", "bar_start", "interval"),
    time_column="bar_start",
)

EXCHANGE_CANDLES = TableSpec(
    name="exchange_candles",
    description=(
        "Closed exchange candles per (exchange, symbol) through ccxt, with traded volume: every configured "
        "exchange's candle, before `ohlcv_bars` picks one per bar. The open candle is never stored."
    ),
    columns=(
        Column("exchange", "str", "Exchange name as in resources/exchanges.yaml.", nullable=False),
        Column("symbol", "str", "Ticker (coin_universe).", nullable=False),
        Column("bar_start", "datetime", "Candle open time (UTC); the candle covers [bar_start, bar_end).", nullable=False),
        Column("interval", "str", "Candle length as a pandas offset alias (1h).", nullable=False),
        Column("bar_end", "datetime", "Candle close time (UTC)."),
        Column("market", "str", "ccxt unified market symbol, e.g. BTC/USDT."),
        Column("quote", "str", "Quote currency of the market (prices and quote_volume are in it)."),
        Column("open", "float", "Open price in the quote currency."),
        Column("high", "float", "Highest traded price."),
        Column("low", "float", "Lowest traded price."),
        Column("close", "float", "Close price."),
        Column("volume", "float", "Traded volume in the base currency."),
        Column("quote_volume", "float", "Traded volume in the quote currency, where the exchange gives it."),
        Column("trade_count", "int", "Trades in the candle, where the exchange gives it."),
        *common_columns(),
    ),
    primary_key=("exchange", "symbol", "bar_start", "interval"),
    time_column="bar_start",
)

TABLES = [COIN_UNIVERSE, PRICE_OBSERVATIONS, OHLCV_BARS, EXCHANGE_CANDLES]
