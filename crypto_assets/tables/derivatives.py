"""The derivatives table: perpetual-swap funding, open interest, mark/index price and basis."""

from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

DERIVATIVES_METRICS = TableSpec(
    name="derivatives_metrics",
    description=(
        "Perpetual-swap metrics per (exchange, symbol) from binance, bybit and okx through ccxt: current funding "
        "rate with mark/index price and basis (`funding_snapshot`), current open interest (`open_interest`), "
        "settled funding rates (`funding_history`) and hourly open interest (`open_interest_history`). Only "
        "figures the exchange gave: an absent figure is empty, never estimated. Join to bars as-of "
        "`available_at`. Docs: docs/exchanges.md."
    ),
    columns=(
        Column("exchange", "str", "Exchange name as in resources/derivatives.yaml.", nullable=False),
        Column("symbol", "str", "Ticker (coin_universe).", nullable=False),
        Column("kind", "str", "funding_snapshot, open_interest, funding_history or open_interest_history.",
               nullable=False),
        Column("observed_at", "datetime", "Time the figure describes (UTC): the exchange's answer or data "
               "timestamp; a settled funding rate: its settlement time.", nullable=False),
        Column("available_at", "datetime", "When the figure became known (UTC); features use it as-of."),
        Column("market", "str", "ccxt unified perpetual market, e.g. BTC/USDT:USDT."),
        Column("settle", "str", "Settle (and quote) currency of the perpetual."),
        Column("funding_rate", "float", "Funding rate per funding interval (0.0001 = 0.01 %); a snapshot's is the "
               "current rate for the settlement at funding_time."),
        Column("funding_time", "datetime", "Settlement time the funding rate applies to (UTC)."),
        Column("open_interest", "float", "Open interest in the base currency (contracts x contract size where the "
               "exchange counts contracts)."),
        Column("open_interest_value", "float", "Open interest value as the exchange states it, in value_currency."),
        Column("value_currency", "str", "Currency of open_interest_value (USDT for bybit, USD for okx oiUsd)."),
        Column("mark_price", "float", "Mark price, where the answer gives it."),
        Column("index_price", "float", "Index price (the exchange's spot index), where the answer gives it."),
        Column("basis", "float", "mark_price / index_price - 1 from the same answer: the perpetual's premium over "
               "the spot index. Empty unless both prices were given."),
        *common_columns(),
    ),
    primary_key=("exchange", "symbol", "kind", "observed_at"),
    time_column="observed_at",
    indexes=(("symbol", "available_at"),),
)

TABLES = [DERIVATIVES_METRICS]
