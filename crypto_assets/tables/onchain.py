"""The on-chain table: one row per chain, metric and UTC day the provider published."""

from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

ONCHAIN_METRICS = TableSpec(
    name="onchain_metrics",
    description=(
        "Daily on-chain metrics from public endpoints (blockchain.com charts, DefiLlama TVL). Only "
        "published values; a day the provider does not give is absent. A day's value is available "
        "once the UTC day has closed. Catalog: resources/onchain_metrics.yaml."
    ),
    columns=(
        Column("chain", "str", "Chain name (bitcoin, ethereum, ...).", nullable=False),
        Column("metric", "str", "Metric name (tx_count, hash_rate, active_addresses, tvl_usd).", nullable=False),
        Column("date", "date", "UTC day the value describes.", nullable=False),
        Column("value", "float", "The published value."),
        Column("unit", "str", "Unit as stated by the provider (or the catalog's when the payload states none)."),
        Column("available_at", "datetime", "When the value is usable (UTC): the end of its day."),
        Column("provider", "str", "blockchain_com or defillama."),
        *common_columns(),
    ),
    primary_key=("chain", "metric", "date"),
    time_column="date",
)

TABLES = [ONCHAIN_METRICS]
