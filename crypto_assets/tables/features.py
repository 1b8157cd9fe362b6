"""Table of the ML feature rows: one per (symbol, bar_start), generated from the feature registry."""

from crypto_assets.features.dictionary import ALL_COLUMNS
from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

ML_FEATURES = TableSpec(
    name="ml_features",
    description=(
        "ML-ready features, one row per (symbol, bar_start): bar prices, technical indicators, sentiment "
        "aggregates (per symbol and market-wide over 1h/4h/24h), macro levels and changes, cross-asset ratios, "
        "on-chain metrics and data-quality flags. Every value is as of `asof_time` (the bar's close): inputs are "
        "joined as-of on their availability time, never by calendar date. Columns: docs/data_dictionary.md."
    ),
    columns=(
        *(Column(f.name, f.kind, f.description, nullable=f.group != "key") for f in ALL_COLUMNS),
        *common_columns(),
    ),
    primary_key=("symbol", "bar_start"),
    time_column="bar_start",
)

TABLES = [ML_FEATURES]
